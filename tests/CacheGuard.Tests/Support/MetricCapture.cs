using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace CacheGuard.Tests.Support;

/// <summary>Listens to the CacheGuard meter for one cache name and sums each instrument's measurements.</summary>
public sealed class MetricCapture : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly string _cacheName;

    public MetricCapture(string cacheName)
    {
        _cacheName = cacheName;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "CacheGuard")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, 1, tags));
        _listener.Start();
    }

    /// <summary>Gets the totals by "instrument" and by "instrument|tag=value" for each tag.</summary>
    public ConcurrentDictionary<string, long> Totals { get; } = new();

    public long this[string name] => Totals.TryGetValue(name, out long v) ? v : 0;

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        bool mine = false;
        foreach (var tag in tags)
        {
            mine |= tag.Key == "cache.name" && (string?)tag.Value == _cacheName;
        }

        if (!mine)
        {
            return;
        }

        Totals.AddOrUpdate(instrument.Name, value, (_, v) => v + value);
        foreach (var tag in tags)
        {
            if (tag.Key != "cache.name")
            {
                Totals.AddOrUpdate($"{instrument.Name}|{tag.Key}={tag.Value}", value, (_, v) => v + value);
            }
        }
    }
}
