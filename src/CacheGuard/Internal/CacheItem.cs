namespace CacheGuard.Internal;

/// <summary>
/// What L1 holds for a key: the value itself (never a copy), its lifetimes, and the bookkeeping its hit checks need.
/// The L1 fields are set once, by the code that places the item in L1, before anyone else can see it.
/// </summary>
internal abstract class CacheItem(long createdTicks, long expiresTicks, string[]? tags, long loadDurationTicks)
{
    private int _refreshing;

    /// <summary>Gets when the value was read from its source (the start of its load), in UTC ticks.</summary>
    public long CreatedTicks { get; } = createdTicks;

    /// <summary>Gets when the value stops being fresh anywhere (its L2 logical expiry), in UTC ticks.</summary>
    public long ExpiresTicks { get; } = expiresTicks;

    /// <summary>Gets the entry's tags, or <see langword="null"/>: only tagged entries pay for tag checks on a hit.</summary>
    public string[]? Tags { get; } = tags;

    /// <summary>Gets how long the load that produced the value took (XFetch's Δ).</summary>
    public long LoadDurationTicks { get; } = loadDurationTicks;

    /// <summary>Gets when this L1 copy stops being fresh. Past it, a fail-safe copy is only a stale stand-in.</summary>
    public long LocalExpiresTicks { get; internal set; } = long.MaxValue;

    /// <summary>Gets when the first hit should start a background refresh (<see cref="long.MaxValue"/>: never).</summary>
    public long RefreshAtTicks { get; internal set; } = long.MaxValue;

    /// <summary>Gets XFetch's β for this copy; 0 when probabilistic early refresh is off.</summary>
    public double Beta { get; internal set; }

    /// <summary>Gets whether this copy was kept past its local expiry as a fail-safe stand-in.</summary>
    public bool FailSafe { get; internal set; }

    /// <summary>Gets whether a hit must look at the clock or the tags: false for plain entries, whose hits cost a lookup only.</summary>
    public bool NeedsCheck { get; internal set; }

    public abstract Type ValueType { get; }

    /// <summary>Claims the one background refresh this copy may start.</summary>
    public bool TryStartRefresh() => Interlocked.Exchange(ref _refreshing, 1) == 0;
}

internal sealed class CacheItem<T>(T value, long createdTicks, long expiresTicks, string[]? tags = null, long loadDurationTicks = 0)
    : CacheItem(createdTicks, expiresTicks, tags, loadDurationTicks)
{
    public readonly T Value = value;

    public override Type ValueType => typeof(T);
}
