namespace CacheGuard.Internal;

/// <summary>Lookups without a loader (<c>TryGetAsync</c>, <c>DisableUnderlyingData</c>): L1, then L2 (coalesced per key), never the data source.</summary>
internal sealed partial class MissPipeline
{
    private readonly FlightTable<string> _lookups;

    /// <summary>The slow path of a lookup: L1 (with the checks an item needs), then one coalesced L2 read per key.</summary>
    public ValueTask<CacheLookup<T>> LookupAsync<T>(string key, CacheEntryFlags flags, CancellationToken cancellationToken)
    {
        _settings.ValidateKey(key);
        if ((flags & CacheEntryFlags.DisableLocalCacheRead) == 0 && _l1.TryGet(key, out object? found))
        {
            if (L1Slot.OtherType<T>(found) is { } cachedType)
            {
                throw _settings.TypeMismatch(key, cachedType, typeof(T));
            }

            if (L1Slot.AsItem<T>(found) is { } item && _hits.Check(item, allowRefresh: false) == HitDecision.Serve)
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

        Ticket ticket = _versions.Capture(key, _settings.NowTicks);
        Flight<string, CacheItem<T>?>? flight = _lookups.JoinOrStart<CacheItem<T>?>(key, ticket, mayBeTagged: true, cancellationToken.CanBeCanceled, out bool started, out _);
        if (flight is null)
        {
            // A lookup of this key as another type is in flight: read on our own rather than share its result.
            return ReadAloneAsync<T>(key, ticket, flags);
        }

        if (!started)
        {
            return WaitForLookupAsync(flight, cancellationToken);
        }

        return LookupL2Async(flight, flags, cancellationToken);
    }

    private async ValueTask<CacheLookup<T>> LookupL2Async<T>(Flight<string, CacheItem<T>?> flight, CacheEntryFlags flags, CancellationToken cancellationToken)
    {
        try
        {
            flight.Complete(await ReadL2AndFillL1Async<T>(flight.Key, flight.Ticket, flags).ConfigureAwait(false));
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            flight.Fail(ex);
        }

        return await WaitForLookupAsync(flight, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<CacheLookup<T>> ReadAloneAsync<T>(string key, Ticket ticket, CacheEntryFlags flags) =>
        ToLookup(await ReadL2AndFillL1Async<T>(key, ticket, flags).ConfigureAwait(false));

    private static async ValueTask<CacheLookup<T>> WaitForLookupAsync<T>(Flight<string, CacheItem<T>?> flight, CancellationToken cancellationToken) =>
        ToLookup(await flight.WaitAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>Reads a fresh entry from L2 and places it in L1 through the publish step (it lands only if nothing invalidated the key since the read began).</summary>
    private async ValueTask<CacheItem<T>?> ReadL2AndFillL1Async<T>(string key, Ticket ticket, CacheEntryFlags flags)
    {
        CacheItem<T>? item = await ReadL2Async<T>(key, _settings.DefaultPolicy).ConfigureAwait(false);
        if (item is null || item.ExpiresTicks <= _settings.NowTicks)
        {
            return null; // an expired entry is kept only as a fail-safe stand-in: not a hit
        }

        if (_metrics.Hits.Enabled)
        {
            _metrics.HitL2();
        }

        Lifetimes lifetimes = _settings.JitteredLifetimes(null, null, null);
        _publisher.PublishLocal(key, ticket, item, _settings.DefaultPolicy, lifetimes.LocalFor(item.Value is null), flags);
        return item;
    }

    internal static CacheLookup<T> ToLookup<T>(CacheItem<T>? item) => item switch
    {
        null => default(CacheLookup<T>),
        { Value: null } => new CacheLookup<T>(CacheLookupStatus.CachedNotFound, default),
        _ => new CacheLookup<T>(CacheLookupStatus.Found, item.Value),
    };
}
