using Microsoft.Extensions.Caching.Memory;

namespace CacheGuard.Internal;

/// <summary>
/// The in-process tier: a private <see cref="MemoryCache"/> on the injected clock (on the system clock, a coarse reading of it: <see cref="CoarseSystemClock"/>). It owns how entries are stored
/// (<see cref="L1Slot"/> for plain values, <see cref="CacheItem{T}"/> with an <see cref="ItemState"/> for entries whose
/// hits check something) and their physical lifetimes. It decides nothing about whether a value may be stored: only
/// <see cref="Publisher"/> and the invalidations of <see cref="KeyVersions"/> write here.
/// </summary>
internal sealed class L1Store : IDisposable
{
    private readonly MemoryCache _cache;
    private readonly bool _sized;

    public L1Store(TimeProvider time, long? sizeLimit)
    {
        _sized = sizeLimit is not null;
        _cache = new MemoryCache(new MemoryCacheOptions
        {
            // Every lookup reads the clock, hits included. On the system clock L1 reads a coarse one (a quarter of the
            // cost of the precise read MemoryCache makes without a clock); it decides only when L1 copies expire.
#pragma warning disable CS0618 // MemoryCache still reads its time from ISystemClock.
            Clock = ReferenceEquals(time, TimeProvider.System) ? new CoarseSystemClock(time) : new TimeProviderClock(time),
#pragma warning restore CS0618
            SizeLimit = sizeLimit,
        });
    }

    public bool TryGet(string key, out object? found) => _cache.TryGetValue(key, out found);

    public bool Contains(string key) => _cache.TryGetValue(key, out _);

    public void Remove(string key) => _cache.Remove(key);

    public void Clear() => _cache.Clear();

    /// <summary>
    /// Places an entry with the bookkeeping its hits need: fresh for <paramref name="localLifetime"/> (never past its L2
    /// expiry), then, with fail-safe, kept as a stand-in until its logical expiry plus FailSafeMaxDuration. An entry whose
    /// hits check nothing is stored as its plain value; only one that needs checks becomes an item.
    /// </summary>
    /// <param name="key">The key.</param>
    /// <param name="entry">The value and its times.</param>
    /// <param name="policy">The entry's policy (fail-safe, early refresh).</param>
    /// <param name="localLifetime">How long this copy is fresh.</param>
    /// <param name="now">The current time, in UTC ticks.</param>
    /// <param name="rearm">
    /// A stale value re-armed by fail-safe: fresh for <paramref name="localLifetime"/> (the throttle) past its logical expiry,
    /// but never past that expiry plus FailSafeMaxDuration, however often it is re-armed.
    /// </param>
    public void Place<T>(string key, in L1Entry<T> entry, in Policy policy, TimeSpan localLifetime, long now, bool rearm = false)
    {
        long staleUntil = policy.FailSafe ? entry.ExpiresTicks + policy.FailSafeMax.Ticks : entry.ExpiresTicks;
        long localExpires = Math.Min(now + localLifetime.Ticks, rearm ? staleUntil : entry.ExpiresTicks);
        staleUntil = Math.Max(staleUntil, localExpires);
        long physicalEnd = Math.Max(localExpires, staleUntil);
        if (physicalEnd <= now)
        {
            return;
        }

        if (entry.Tags is null && !policy.NeedsItem)
        {
            if (localExpires > now)
            {
                Set(key, L1Slot.Wrap(entry.Value), TimeSpan.FromTicks(localExpires - now));
            }

            return;
        }

        // The state belongs to one L1 copy: an item already placed (read back from L1) is copied, any other is used as it is.
        CacheItem<T> placed = entry.ToUnplacedItem();
        placed.Attach(new ItemState
        {
            LocalExpiresTicks = localExpires,
            FailSafe = policy.FailSafe,
            StaleUntilTicks = staleUntil,
            RefreshAtTicks = policy.EagerRefreshThreshold is { } threshold && localExpires > now ? now + (long)((localExpires - now) * threshold) : long.MaxValue,
            Beta = policy.Beta,
        });
        Set(key, placed, TimeSpan.FromTicks(physicalEnd - now));
    }

    public void Dispose() => _cache.Dispose();

    private void Set(string key, object value, TimeSpan lifetime)
    {
        using ICacheEntry entry = _cache.CreateEntry(key);
        entry.Value = value;
        entry.AbsoluteExpirationRelativeToNow = lifetime;
        if (_sized)
        {
            entry.Size = 1;
        }
    }
}

/// <summary>
/// A value on its way into L1: an item already made (read from L2, a stand-in, a write), or the parts of a loaded value,
/// which become an item only where one is needed (L2, or an L1 entry whose hits check something): a plain miss stores
/// its value and makes no item.
/// </summary>
internal readonly struct L1Entry<T>
{
    private readonly CacheItem<T>? _item;

    public L1Entry(CacheItem<T> item)
    {
        _item = item;
        Value = item.Value;
        CreatedTicks = item.CreatedTicks;
        ExpiresTicks = item.ExpiresTicks;
        Tags = item.Tags;
        LoadDurationTicks = item.LoadDurationTicks;
    }

    public L1Entry(T value, long createdTicks, long expiresTicks, string[]? tags, long loadDurationTicks)
    {
        Value = value;
        CreatedTicks = createdTicks;
        ExpiresTicks = expiresTicks;
        Tags = tags;
        LoadDurationTicks = loadDurationTicks;
    }

    public T Value { get; }

    /// <summary>Gets when the work that produced the value started, in UTC ticks.</summary>
    public long CreatedTicks { get; }

    /// <summary>Gets the value's logical L2 expiry, in UTC ticks.</summary>
    public long ExpiresTicks { get; }

    public string[]? Tags { get; }

    public long LoadDurationTicks { get; }

    /// <summary>The entry as an item: the one it was made from, or a new one.</summary>
    public CacheItem<T> ToItem() => _item ?? new CacheItem<T>(Value, CreatedTicks, ExpiresTicks, Tags, LoadDurationTicks);

    /// <summary>The entry as an item no L1 copy has claimed yet: a placed item (it carries its copy's state) is copied.</summary>
    public CacheItem<T> ToUnplacedItem() => _item is { State: null } unplaced ? unplaced : new CacheItem<T>(Value, CreatedTicks, ExpiresTicks, Tags, LoadDurationTicks);
}

