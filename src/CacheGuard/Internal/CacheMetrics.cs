using System.Diagnostics.Metrics;

namespace CacheGuard.Internal;

/// <summary>
/// CacheGuard's instruments, on the meter named <c>CacheGuard</c>. Every measurement carries the cache's name
/// (<c>cache.name</c>), never the key: keys are unbounded in number and may be personal data.
/// </summary>
internal sealed class CacheMetrics : IDisposable
{
    public const string MeterName = "CacheGuard";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly KeyValuePair<string, object?> _name;
    private readonly KeyValuePair<string, object?> _levelL1 = new("cache.level", "l1");
    private readonly KeyValuePair<string, object?> _levelL2 = new("cache.level", "l2");

    public CacheMetrics(string cacheName, IMeterFactory? meterFactory)
    {
        _name = new KeyValuePair<string, object?>("cache.name", cacheName);
        if (meterFactory is not null)
        {
            _meter = meterFactory.Create(new MeterOptions(MeterName));
        }
        else
        {
            _meter = new Meter(MeterName);
            _ownsMeter = true;
        }

        Hits = _meter.CreateCounter<long>("cacheguard.cache.hits", "{request}", "Requests answered from a cache level (tag cache.level: l1 or l2).");
        Misses = _meter.CreateCounter<long>("cacheguard.cache.misses", "{request}", "Requests that found the key in no cache level and started or joined a load.");
        Loads = _meter.CreateCounter<long>("cacheguard.cache.loads", "{load}", "Loader executions that completed successfully (failures: cacheguard.cache.loader.errors).");
        Coalesced = _meter.CreateCounter<long>("cacheguard.cache.coalesced", "{request}", "Requests that joined a load already in flight instead of starting one.");
        LoadDuration = _meter.CreateHistogram<double>("cacheguard.cache.load.duration", "s", "How long loader executions took.");
        LoaderErrors = _meter.CreateCounter<long>("cacheguard.cache.loader.errors", "{error}", "Loader executions that threw.");
        StaleValues = _meter.CreateCounter<long>("cacheguard.cache.stale_served", "{request}", "Loads answered with a stale value by fail-safe or a loader timeout (tag cache.stale_reason: error, soft_timeout, hard_timeout).");
        EarlyRefreshes = _meter.CreateCounter<long>("cacheguard.cache.early_refreshes", "{refresh}", "Background refreshes started by a hit before expiry (eager or probabilistic).");
        LoaderTimeouts = _meter.CreateCounter<long>("cacheguard.cache.loader.timeouts", "{timeout}", "Loads whose callers stopped waiting at LoaderHardTimeout.");
        CircuitBreakerTransitions = _meter.CreateCounter<long>("cacheguard.cache.l2.circuit_breaker.transitions", "{transition}", "L2 circuit breaker state changes (tag cache.circuit_state: open, half_open, closed).");
        BackplaneEvictions = _meter.CreateCounter<long>("cacheguard.cache.backplane.evictions", "{eviction}", "L1 entries (or tags) invalidated because another node announced a change.");
        LoadLockOutcomes = _meter.CreateCounter<long>("cacheguard.cache.load_lock", "{attempt}", "Distributed load lock attempts by outcome (tag cache.lock_outcome: acquired, awaited, taken_over, timed_out, unavailable).");
        L2Errors = _meter.CreateCounter<long>("cacheguard.cache.l2.errors", "{error}", "Distributed cache calls that failed, timed out or returned an unusable payload (tags cache.operation, error.type).");
    }

    public Counter<long> Hits { get; }

    public Counter<long> Misses { get; }

    public Counter<long> Loads { get; }

    public Counter<long> Coalesced { get; }

    public Histogram<double> LoadDuration { get; }

    public Counter<long> LoaderErrors { get; }

    public Counter<long> L2Errors { get; }

    public Counter<long> StaleValues { get; }

    public Counter<long> BackplaneEvictions { get; }

    public Counter<long> LoadLockOutcomes { get; }

    public void LoadLock(string outcome, int count) => LoadLockOutcomes.Add(count, _name, new KeyValuePair<string, object?>("cache.lock_outcome", outcome));

    public void BackplaneEviction() => BackplaneEvictions.Add(1, _name);

    public Counter<long> EarlyRefreshes { get; }

    public Counter<long> LoaderTimeouts { get; }

    public Counter<long> CircuitBreakerTransitions { get; }

    public void StaleServed(string reason) => StaleValues.Add(1, _name, new KeyValuePair<string, object?>("cache.stale_reason", reason));

    public void EarlyRefresh() => EarlyRefreshes.Add(1, _name);

    public void LoaderTimeout() => LoaderTimeouts.Add(1, _name);

    public void CircuitBreaker(string state) => CircuitBreakerTransitions.Add(1, _name, new KeyValuePair<string, object?>("cache.circuit_state", state));

    public void HitL1() => Hits.Add(1, _name, _levelL1);

    public void HitL2() => Hits.Add(1, _name, _levelL2);

    public void Miss() => Misses.Add(1, _name);

    /// <summary>Counts a load, and records its duration when it was measured (it is whenever a duration listener was on when the load began).</summary>
    public void Load(TimeSpan? duration)
    {
        Loads.Add(1, _name);
        if (duration is { } measured)
        {
            LoadDuration.Record(measured.TotalSeconds, _name);
        }
    }

    public void Joined() => Coalesced.Add(1, _name);

    public void LoaderError() => LoaderErrors.Add(1, _name);

    public void L2Error(string operation, string errorType) =>
        L2Errors.Add(1, _name, new KeyValuePair<string, object?>("cache.operation", operation), new KeyValuePair<string, object?>("error.type", errorType));

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}
