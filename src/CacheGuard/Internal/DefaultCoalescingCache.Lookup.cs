namespace CacheGuard.Internal;

/// <summary>Lookups without a loader: L1, then L2 (coalesced per key), never the data source.</summary>
internal sealed partial class DefaultCoalescingCache
{
    private readonly FlightTable<string> _lookups = new(StringComparer.Ordinal);

    public ValueTask<CacheLookup<T>> TryGetAsync<T>(string key, CancellationToken cancellationToken = default)
    {
        if (key is not null && _l1.TryGetValue(key, out object? found))
        {
            if (found is CacheItem<T> item ? IsFresh(item) : L1Slot.TryPlain<T>(found!, out _))
            {
                if (_metrics.Hits.Enabled)
                {
                    _metrics.HitL1();
                }

                return new ValueTask<CacheLookup<T>>(found is CacheItem<T> checkedItem ? ToLookup(checkedItem) : PlainLookup<T>(found!));
            }
        }

        return TryGetSlow<T>(key!, CacheEntryFlags.None, cancellationToken);
    }

    private ValueTask<CacheLookup<T>> TryGetSlow<T>(string key, CacheEntryFlags flags, CancellationToken cancellationToken)
    {
        ValidateKey(key);
        if ((flags & CacheEntryFlags.DisableLocalCacheRead) == 0 && _l1.TryGetValue(key, out object? found))
        {
            if (L1Slot.OtherType<T>(found) is { } cachedType)
            {
                throw new CacheTypeMismatchException(key, cachedType, typeof(T));
            }

            if (L1Slot.AsItem<T>(found) is { } item && IsFresh(item))
            {
                return new ValueTask<CacheLookup<T>>(ToLookup(item));
            }
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<CacheLookup<T>>(cancellationToken);
        }

        if (_l2 is null || (flags & CacheEntryFlags.DisableDistributedCacheRead) != 0)
        {
            return new ValueTask<CacheLookup<T>>(default(CacheLookup<T>));
        }

        Flight<string, CacheItem<T>?>? flight = _lookups.JoinOrStart<CacheItem<T>?>(key, cancellationToken.CanBeCanceled, out bool started, out _);
        if (flight is null)
        {
            // A lookup of this key as another type is in flight: read on our own rather than share its result.
            return ReadAloneAsync(this, key, flags);
        }

        if (!started)
        {
            return WaitAsync(flight, cancellationToken);
        }

        return LookupL2Async(this, flight, flags, cancellationToken);

        static async ValueTask<CacheLookup<T>> LookupL2Async(DefaultCoalescingCache self, Flight<string, CacheItem<T>?> flight, CacheEntryFlags flags, CancellationToken cancellationToken)
        {
            try
            {
                CacheItem<T>? item = await self.ReadL2AndFillL1Async<T>(flight.Key, flags).ConfigureAwait(false);
                flight.Complete(item);
            }
            catch (Exception ex)
            {
                flight.Fail(ex);
                throw;
            }

            return await WaitAsync(flight, cancellationToken).ConfigureAwait(false);
        }

        static async ValueTask<CacheLookup<T>> ReadAloneAsync(DefaultCoalescingCache self, string key, CacheEntryFlags flags) =>
            ToLookup(await self.ReadL2AndFillL1Async<T>(key, flags).ConfigureAwait(false));

        static async ValueTask<CacheLookup<T>> WaitAsync(Flight<string, CacheItem<T>?> flight, CancellationToken cancellationToken) =>
            ToLookup(await flight.WaitAsync(cancellationToken).ConfigureAwait(false));
    }

    private async ValueTask<CacheItem<T>?> ReadL2AndFillL1Async<T>(string key, CacheEntryFlags flags)
    {
        CacheItem<T>? item = await ReadL2Async<T>(key).ConfigureAwait(false);
        if (item is not null && !await SurvivesInvalidationAsync(item).ConfigureAwait(false))
        {
            item = null;
        }

        if (item is not null && item.ExpiresTicks <= _time.GetUtcNow().UtcTicks)
        {
            item = null; // kept only as a fail-safe stand-in: not a hit
        }

        if (item is not null)
        {
            if (_metrics.Hits.Enabled)
            {
                _metrics.HitL2();
            }

            if ((flags & CacheEntryFlags.DisableLocalCacheWrite) == 0)
            {
                Lifetimes lifetimes = JitteredLifetimes(null, null, null);
                SetL1(key, item, _defaultPolicy, item.Value is null ? lifetimes.NegativeLocal : lifetimes.Local);
            }
        }

        return item;
    }

    private static CacheLookup<T> PlainLookup<T>(object found) =>
        L1Slot.TryPlain(found, out T value) && found is not NullValue && value is not null
            ? new CacheLookup<T>(CacheLookupStatus.Found, value)
            : new CacheLookup<T>(CacheLookupStatus.CachedNotFound, default);

    private static CacheLookup<T> ToLookup<T>(CacheItem<T>? item) => item switch
    {
        null => default(CacheLookup<T>),
        { Value: null } => new CacheLookup<T>(CacheLookupStatus.CachedNotFound, default),
        _ => new CacheLookup<T>(CacheLookupStatus.Found, item.Value),
    };
}
