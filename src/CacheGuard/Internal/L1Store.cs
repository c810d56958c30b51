using Microsoft.Extensions.Caching.Memory;

namespace CacheGuard.Internal;

/// <summary>
/// The in-process tier: a private <see cref="MemoryCache"/> on the injected clock. It owns how entries are stored
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
#pragma warning disable CS0618 // MemoryCache still reads its time from ISystemClock.
            Clock = new TimeProviderClock(time),
#pragma warning restore CS0618
            SizeLimit = sizeLimit,
        });
    }

    public bool TryGet(string key, out object? found) => _cache.TryGetValue(key, out found);

    public bool Contains(string key) => _cache.TryGetValue(key, out _);

    public void Remove(string key) => _cache.Remove(key);

    public void Clear() => _cache.Clear();

    /// <summary>Places a plain entry's value for <paramref name="lifetime"/>.</summary>
    public void SetPlain<T>(string key, T value, TimeSpan lifetime)
    {
        if (lifetime > TimeSpan.Zero)
        {
            Set(key, L1Slot.Wrap(value), lifetime);
        }
    }

    /// <summary>
    /// Places an item with the bookkeeping its hits need: fresh for <paramref name="localLifetime"/> (never past its L2
    /// expiry), then, with fail-safe, kept as a stand-in until its logical expiry plus FailSafeMaxDuration.
    /// </summary>
    /// <param name="key">The key.</param>
    /// <param name="item">The value and its times.</param>
    /// <param name="policy">The entry's policy (fail-safe, early refresh).</param>
    /// <param name="localLifetime">How long this copy is fresh.</param>
    /// <param name="now">The current time, in UTC ticks.</param>
    /// <param name="rearm">
    /// A stale value re-armed by fail-safe: fresh for <paramref name="localLifetime"/> (the throttle) past its logical expiry,
    /// but never past that expiry plus FailSafeMaxDuration, however often it is re-armed.
    /// </param>
    public void SetItem<T>(string key, CacheItem<T> item, in Policy policy, TimeSpan localLifetime, long now, bool rearm = false)
    {
        long staleUntil = policy.FailSafe ? item.ExpiresTicks + policy.FailSafeMax.Ticks : item.ExpiresTicks;
        long localExpires = Math.Min(now + localLifetime.Ticks, rearm ? staleUntil : item.ExpiresTicks);
        staleUntil = Math.Max(staleUntil, localExpires);
        long physicalEnd = Math.Max(localExpires, staleUntil);
        if (physicalEnd <= now)
        {
            return;
        }

        if (item.Tags is null && !policy.NeedsItem)
        {
            if (localExpires > now)
            {
                Set(key, L1Slot.Wrap(item.Value), TimeSpan.FromTicks(localExpires - now));
            }

            return;
        }

        // The state belongs to one L1 copy: an item already placed (read back from L1) is copied, a new one is used as it is.
        CacheItem<T> placed = item.State is null ? item : new CacheItem<T>(item.Value, item.CreatedTicks, item.ExpiresTicks, item.Tags, item.LoadDurationTicks);
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
