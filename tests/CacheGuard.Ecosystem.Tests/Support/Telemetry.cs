using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CacheGuard.Ecosystem.Tests.Support;

/// <summary>
/// Reads the CacheGuard meter the way an exporter would, for one cache name: totals per instrument and per
/// "instrument|tag=value", plus the histogram's recorded values.
/// </summary>
public sealed class MeterCapture : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly string _cacheName;
    private readonly ConcurrentDictionary<string, long> _totals = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<double> _durations = new();
    private readonly ConcurrentQueue<(string Name, long Target, TaskCompletionSource Signal)> _watches = new();

    public MeterCapture(string cacheName, object? scope = null)
    {
        _cacheName = cacheName;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "CacheGuard" && (scope is null || ReferenceEquals(instrument.Meter.Scope, scope)))
            {
                Instruments.TryAdd(instrument.Name, instrument);
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (Record(instrument, 1, tags))
            {
                _durations.Enqueue(value);
            }
        });
        _listener.Start();
    }

    /// <summary>Gets the CacheGuard instruments seen, by name.</summary>
    public ConcurrentDictionary<string, Instrument> Instruments { get; } = new(StringComparer.Ordinal);

    /// <summary>Gets the values recorded by the load-duration histogram.</summary>
    public IReadOnlyCollection<double> LoadDurations => _durations;

    /// <summary>Gets the total of an instrument ("cacheguard.cache.loads") or of one tag value ("cacheguard.cache.hits|cache.level=l1").</summary>
    public long this[string name] => _totals.TryGetValue(name, out long v) ? v : 0;

    /// <summary>Gives a task that completes once the total of <paramref name="name"/> reaches <paramref name="target"/>.</summary>
    public void WhenReaches(string name, long target, out Task reached)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _watches.Enqueue((name, target, signal));
        if (this[name] >= target)
        {
            signal.TrySetResult();
        }

        reached = signal.Task;
    }

    /// <summary>Gets every total, for assertion messages.</summary>
    public string Dump() => string.Join(", ", _totals.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));

    public void Dispose() => _listener.Dispose();

    private bool Record(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        bool mine = false;
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            mine |= tag.Key == "cache.name" && (string?)tag.Value == _cacheName;
        }

        if (!mine)
        {
            return false;
        }

        long total = _totals.AddOrUpdate(instrument.Name, value, (_, v) => v + value);
        foreach ((string name, long target, TaskCompletionSource signal) in _watches)
        {
            if (name == instrument.Name && total >= target)
            {
                signal.TrySetResult();
            }
        }

        foreach (KeyValuePair<string, object?> tag in tags)
        {
            if (tag.Key != "cache.name")
            {
                _totals.AddOrUpdate($"{instrument.Name}|{tag.Key}={tag.Value}", value, (_, v) => v + value);
            }
        }

        return true;
    }
}

/// <summary>Collects the stopped activities of the CacheGuard source that belong to one cache name.</summary>
public sealed class ActivityCapture : IDisposable
{
    private readonly ActivityListener _listener;
    private readonly ConcurrentQueue<Activity> _stopped = new();

    public ActivityCapture(string cacheName)
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "CacheGuard",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if ((string?)activity.GetTagItem("cache.name") == cacheName)
                {
                    _stopped.Enqueue(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public IReadOnlyList<Activity> Stopped => [.. _stopped];

    public int Count(string operationName) => _stopped.Count(a => a.OperationName == operationName);

    public void Dispose() => _listener.Dispose();
}

/// <summary>An <see cref="IMeterFactory"/> of our own, to prove the cache creates its meter through the container's factory.</summary>
public sealed class TestMeterFactory : IMeterFactory
{
    private readonly ConcurrentBag<Meter> _meters = [];

    public IReadOnlyCollection<Meter> Created => _meters;

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
        _meters.Add(meter);
        return meter;
    }

    public void Dispose()
    {
        foreach (Meter meter in _meters)
        {
            meter.Dispose();
        }
    }
}
