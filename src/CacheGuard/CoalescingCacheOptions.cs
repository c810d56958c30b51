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

    /// <summary>Gets or sets how often a node re-reads a tag's invalidation time from L2 while it serves entries with that tag.</summary>
    /// <value>
    /// One second by default: an entry invalidated by <see cref="ICoalescingCache.RemoveByTagAsync(string, CancellationToken)"/>
    /// on another node stops being served here within this interval. Must be greater than zero. Without an L2, tags are
    /// local and this is not used.
    /// </value>
    public TimeSpan TagCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Gets or sets whether traces carry cache keys (the <c>cache.key</c> tag).</summary>
    /// <value>
    /// <see langword="false"/> by default: keys can be personal data (an e-mail address, a user id). Metrics never carry
    /// keys, whatever this says.
    /// </value>
    public bool IncludeKeysInTelemetry { get; set; }

    /// <summary>
    /// The distributed cache chosen explicitly through the builder, which wins over the one registered in DI.
    /// </summary>
    internal Func<IServiceProvider, IDistributedCache>? DistributedCacheFactory { get; set; }

    /// <summary>Whether the builder asked for no L2 at all, whatever DI holds.</summary>
    internal bool DisableDistributedCache { get; set; }
}
