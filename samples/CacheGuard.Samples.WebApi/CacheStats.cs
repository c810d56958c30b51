using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace CacheGuard.Samples.WebApi;

/// <summary>
/// Totals of CacheGuard's counters for this application, read in-process with a <see cref="MeterListener"/> (the same
/// instruments an OpenTelemetry exporter would publish). Only meters created by this application's
/// <see cref="IMeterFactory"/> are counted, so two hosts in one process do not mix.
/// </summary>
internal sealed class CacheStats : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _totals = new(StringComparer.Ordinal);

    public CacheStats(IMeterFactory meterFactory)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "CacheGuard" && ReferenceEquals(instrument.Meter.Scope, meterFactory) && instrument is Counter<long>)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string name = instrument.Name;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == "cache.level")
                {
                    name = $"{name}.{tag.Value}";
                }
            }

            _totals.AddOrUpdate(name, value, (_, total) => total + value);
        });
        _listener.Start();
    }

    /// <summary>Gets every counter's total, by instrument name (hits split by level: <c>cacheguard.cache.hits.l1</c>).</summary>
    public IReadOnlyDictionary<string, long> Snapshot() => new SortedDictionary<string, long>(_totals, StringComparer.Ordinal);

    public void Dispose() => _listener.Dispose();
}
