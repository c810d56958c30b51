using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard;

/// <summary>
/// Cache-wide settings for an <see cref="ICoalescingCache"/>. Validated when the cache is first created.
/// </summary>
public sealed class CoalescingCacheOptions
{
    /// <summary>The longest cache key accepted when <see cref="MaxKeyLength"/> is left at its default.</summary>
    public const int DefaultMaxKeyLength = 1024;

    /// <summary>Gets or sets how long a loaded value lives in the distributed cache (L2) before jitter.</summary>
    /// <value>Five minutes by default. Must be greater than zero.</value>
    public TimeSpan DefaultExpiration { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Gets or sets how long a value lives in the in-process cache (L1) before jitter.</summary>
    /// <value>
    /// <see langword="null"/> by default, meaning the same as the entry's L2 expiration. When set, it must be
    /// greater than zero; it never makes an L1 entry outlive its L2 expiration.
    /// </value>
    public TimeSpan? DefaultLocalExpiration { get; set; }

    /// <summary>Gets or sets the maximum random extension of every lifetime written, as a fraction of it.</summary>
    /// <value>
    /// 0.1 by default: a 60 s lifetime becomes a uniformly random lifetime in [60 s, 66 s), so entries written together
    /// do not expire together (the cache avalanche). 0 turns jitter off. Must be in [0, 1].
    /// </value>
    public double JitterRatio { get; set; } = 0.1;

    /// <summary>Gets or sets how long a "not found" (<see langword="null"/>) loader result is cached, before jitter.</summary>
    /// <value>
    /// 30 seconds by default. Caching absence briefly stops lookups of missing data from reaching the data source
    /// every time (cache penetration). <see cref="TimeSpan.Zero"/> turns it off: <see langword="null"/> results are then
    /// not cached at all. Must not be negative.
    /// </value>
    public TimeSpan NegativeExpiration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets or sets the prefix added to every key written to the distributed cache (L2).</summary>
    /// <value>Empty by default. Use it to keep several applications apart in one shared L2.</value>
    public string KeyPrefix { get; set; } = string.Empty;

    /// <summary>Gets or sets the longest key, in characters, that the cache accepts.</summary>
    /// <value>1024 by default. Must be at least 1.</value>
    public int MaxKeyLength { get; set; } = DefaultMaxKeyLength;

    /// <summary>Gets or sets how long a single distributed-cache (L2) call may take before it counts as failed.</summary>
    /// <value>
    /// Two seconds by default. A read that takes longer is treated as a miss and a write as skipped; both are logged
    /// and counted. Must be greater than zero.
    /// </value>
    public TimeSpan DistributedCacheTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Gets or sets the maximum number of entries the in-process cache (L1) holds.</summary>
    /// <value>
    /// <see langword="null"/> (unbounded) by default. When the limit is reached, new entries are not added to L1 until
    /// compaction makes room; they are still returned to callers and written to L2.
    /// </value>
    public long? SizeLimit { get; set; }

    /// <summary>Gets or sets the name reported in metrics and logs.</summary>
    /// <value><c>default</c> for the unnamed cache.</value>
    public string Name { get; set; } = "default";

    /// <summary>Gets or sets whether entries are kept past their expiry so a stale value can stand in when the loader fails.</summary>
    /// <value>
    /// <see langword="false"/> by default. When on, an entry stays in L1 and L2 for <see cref="FailSafeMaxDuration"/> past its
    /// logical expiry; if a reload throws or times out, callers get the stale value (logged, counted) instead of the error.
    /// Overridable per entry with <see cref="CacheEntryOptions.FailSafe"/>.
    /// </value>
    public bool FailSafe { get; set; }

    /// <summary>Gets or sets how long an entry is kept past its logical expiry when fail-safe is on.</summary>
    /// <value>One hour by default. Must be greater than zero.</value>
    public TimeSpan FailSafeMaxDuration { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Gets or sets how long a stale value served by fail-safe is re-armed for, so a failing source is not hammered.</summary>
    /// <value>30 seconds by default. Must be greater than zero.</value>
    public TimeSpan FailSafeThrottleDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Gets or sets how long callers wait for a loader before getting the stale value, when there is one.</summary>
    /// <value>
    /// <see langword="null"/> (no soft timeout) by default. When a stale value exists and the loader is slower than this,
    /// callers get the stale value at once while the load goes on in the background and updates both levels when it
    /// finishes.
    /// </value>
    public TimeSpan? LoaderSoftTimeout { get; set; }

    /// <summary>Gets or sets the longest any caller waits for a loader.</summary>
    /// <value>
    /// <see langword="null"/> (no limit) by default. Past it, callers get a <see cref="TimeoutException"/> (or, with
    /// fail-safe and a stale value, the stale value). The load may still finish in the background; see
    /// <see cref="AllowTimedOutLoaderBackgroundCompletion"/>.
    /// </value>
    public TimeSpan? LoaderHardTimeout { get; set; }

    /// <summary>Gets or sets whether a load that timed out for its callers may still finish and fill the cache.</summary>
    /// <value><see langword="true"/> by default. When <see langword="false"/>, the loader's token is cancelled at the hard timeout.</value>
    public bool AllowTimedOutLoaderBackgroundCompletion { get; set; } = true;

    /// <summary>Gets or sets the fraction of an L1 entry's lifetime after which the first hit refreshes it in the background.</summary>
    /// <value>
    /// <see langword="null"/> (off) by default. With 0.9, the first hit after 90 % of the entry's lifetime starts one
    /// background refresh (coalesced with any other load of the key) and returns the current value at once, so a hot key
    /// never expires under traffic. Must be in (0, 1).
    /// </value>
    public double? EagerRefreshThreshold { get; set; }

    /// <summary>Gets or sets whether hits refresh an entry early with a probability that rises as its expiry nears (XFetch).</summary>
    /// <value>
    /// <see langword="false"/> by default. Each hit refreshes in the background when
    /// <c>now − Δ·β·ln(U) ≥ expiry</c>, where Δ is how long the last load took and U is uniform in (0, 1]
    /// (Vattani, Chierichetti and Lowenstein, VLDB 2015). Needs no coordination between nodes.
    /// </value>
    public bool ProbabilisticEarlyRefresh { get; set; }

    /// <summary>Gets or sets XFetch's β: above 1 refreshes earlier, below 1 later.</summary>
    /// <value>1.0 by default. Must be greater than zero.</value>
    public double ProbabilisticEarlyRefreshBeta { get; set; } = 1.0;

    /// <summary>Gets or sets how many L2 failures within <see cref="DistributedCacheCircuitBreakerWindow"/> open the circuit breaker.</summary>
    /// <value>5 by default. Must be at least 1.</value>
    public int DistributedCacheCircuitBreakerThreshold { get; set; } = 5;

    /// <summary>Gets or sets the window in which L2 failures are counted towards opening the circuit breaker.</summary>
    /// <value>10 seconds by default. Must be greater than zero.</value>
    public TimeSpan DistributedCacheCircuitBreakerWindow { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Gets or sets how long L2 is left alone once the circuit breaker opens, before one call probes it.</summary>
    /// <value>
    /// 15 seconds by default; <see cref="TimeSpan.Zero"/> turns the breaker off. While open, reads are misses and writes
    /// are queued (latest value per key) and replayed once L2 answers again.
    /// </value>
    public TimeSpan DistributedCacheCircuitBreakerDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Gets or sets how many keys' failed L2 writes and removals are kept for replay.</summary>
    /// <value>
    /// 10,000 by default. Past it, the oldest pending key is dropped from L1 as well as from the queue, so no node serves a
    /// value L2 never saw for longer than its L1 lifetime. Must be at least 1.
    /// </value>
    public int MaxPendingDistributedWrites { get; set; } = 10_000;

    /// <summary>Gets or sets whether, on an L2 miss, a node takes a per-key lock shared by every node before loading.</summary>
    /// <value>
    /// <see langword="false"/> by default. When on, one load runs per key across the fleet: other nodes wait for the
    /// owner's result in L2 (at most <see cref="DistributedLoadLockTimeout"/>, then load themselves). Costs one extra
    /// round trip per miss. Needs an <see cref="IDistributedLoadLock"/> (CacheGuard.Redis registers one).
    /// </value>
    public bool DistributedLoadLock { get; set; }

    /// <summary>Gets or sets how long a node waits for another node's load before loading itself.</summary>
    /// <value>10 seconds by default. Must be greater than zero.</value>
    public TimeSpan DistributedLoadLockTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Gets or sets how often a node re-reads a tag's invalidation time from L2 while it serves entries with that tag.</summary>
    /// <value>
    /// One second by default: an entry invalidated by <see cref="ICoalescingCache.RemoveByTagAsync(string, CancellationToken)"/>
    /// on another node stops being served here within this interval. Must be greater than zero. Without an L2, tags are
    /// local and this is not used.
    /// </value>
    public TimeSpan TagCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Gets or sets whether traces (the <c>cache.key</c> tag) and log messages carry cache keys.</summary>
    /// <value>
    /// <see langword="false"/> by default: keys can be personal data (an e-mail address, a user id), so log messages show
    /// <c>(hidden)</c> in their place. Metrics never carry keys, whatever this says.
    /// </value>
    public bool IncludeKeysInTelemetry { get; set; }

    /// <summary>
    /// The distributed cache chosen explicitly through the builder, which wins over the one registered in DI.
    /// </summary>
    internal Func<IServiceProvider, IDistributedCache>? DistributedCacheFactory { get; set; }

    /// <summary>The backplane chosen through the builder, if any.</summary>
    internal Func<IServiceProvider, ICacheBackplane>? BackplaneFactory { get; set; }

    /// <summary>The distributed load lock chosen through the builder, if any (used when <see cref="DistributedLoadLock"/> is on).</summary>
    internal Func<IServiceProvider, IDistributedLoadLock>? LoadLockFactory { get; set; }

    /// <summary>The batch reader chosen through the builder, for an L2 that is not an <see cref="IBatchDistributedCache"/> itself.</summary>
    internal Func<IServiceProvider, IBatchDistributedCache>? BatchDistributedCacheFactory { get; set; }

    /// <summary>The L2 health source chosen through the builder, if any.</summary>
    internal Func<IServiceProvider, IDistributedCacheHealth>? HealthFactory { get; set; }

    /// <summary>The name a named cache was registered under (<see langword="null"/> for the unnamed cache): its L2 key space.</summary>
    internal string? RegisteredName { get; set; }

    /// <summary>Whether the builder asked for no L2 at all, whatever DI holds.</summary>
    internal bool DisableDistributedCache { get; set; }
}
