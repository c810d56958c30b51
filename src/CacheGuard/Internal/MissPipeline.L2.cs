using System.Runtime.CompilerServices;

namespace CacheGuard.Internal;

/// <summary>The L2 stage of a flight: one read, and what it may answer (a fresh value, or a fail-safe stand-in).</summary>
internal sealed partial class MissPipeline
{
    /// <summary>2. L2, then the lock and the loader if it had no answer.</summary>
    private Task FromL2Async<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheItem<T>? refreshOf)
    {
        try
        {
            if (_l2 is not null && ((options?.Flags ?? CacheEntryFlags.None) & CacheEntryFlags.DisableDistributedCacheRead) == 0)
            {
                ValueTask<CacheItem<T>?> read = ReadL2Async<T>(flight.Key, _settings.Resolve(options));
                if (!read.IsCompletedSuccessfully)
                {
                    return AfterL2ReadAsync(read, flight, state, loader, options, refreshOf);
                }

                if (AnsweredFromL2(flight, read.Result, options, refreshOf))
                {
                    return Task.CompletedTask;
                }
            }
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            flight.Fail(ex);
            return Task.CompletedTask;
        }

        return LockAndLoadAsync(flight, state, loader, options, refreshOf);
    }

    /// <summary>The continuation of a pending L2 read: its state is only what the later stages need.</summary>
    private async Task AfterL2ReadAsync<TState, T>(ValueTask<CacheItem<T>?> read, Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheItem<T>? refreshOf)
    {
        try
        {
            if (AnsweredFromL2(flight, await read.ConfigureAwait(false), options, refreshOf))
            {
                return;
            }
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            flight.Fail(ex);
            return;
        }

        await LockAndLoadAsync(flight, state, loader, options, refreshOf).ConfigureAwait(false);
    }

    /// <summary>
    /// Completes the flight from what L2 held, if that is an answer: fresh, and for a refresh newer than the value it
    /// refreshes. An expired entry L2 kept for fail-safe becomes the flight's stand-in.
    /// </summary>
    private bool AnsweredFromL2<T>(Flight<string, T> flight, CacheItem<T>? stored, CacheEntryOptions? options, CacheItem<T>? refreshOf)
    {
        if (stored is null)
        {
            return false;
        }

        Policy policy = _settings.Resolve(options);
        long now = _settings.NowTicks;
        if (stored.ExpiresTicks > now && (refreshOf is null || stored.CreatedTicks > refreshOf.CreatedTicks))
        {
            CompleteFromL2(flight, stored, options, policy, options?.Flags ?? CacheEntryFlags.None);
            return true;
        }

        if (policy.FailSafe && stored.ExpiresTicks <= now)
        {
            flight.OfferStale(stored, stored.ExpiresTicks + policy.FailSafeMax.Ticks); // L2 kept it for fail-safe
        }

        return false;
    }

    /// <summary>Reads L2; an entry invalidated by a tag is neither fresh nor a stand-in, and an expired one is kept only for fail-safe within its window.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // every L2 hit: its state machine is reused, not allocated
    private async ValueTask<CacheItem<T>?> ReadL2Async<T>(string key, Policy policy)
    {
        CacheItem<T>? stored = await _l2!.ReadAsync<T>(key).ConfigureAwait(false);
        if (stored is null || !await _tags.SurvivesAsync(stored).ConfigureAwait(false))
        {
            return null;
        }

        long now = _settings.NowTicks;
        return stored.ExpiresTicks > now || (policy.FailSafe && now < stored.ExpiresTicks + policy.FailSafeMax.Ticks) ? stored : null;
    }

    /// <summary>Completes a flight with a fresh value read from L2 (its own read, or the lock owner's result), placing it in L1 if it may land.</summary>
    private void CompleteFromL2<T>(Flight<string, T> flight, CacheItem<T> stored, CacheEntryOptions? options, in Policy policy, CacheEntryFlags flags)
    {
        if (_metrics.Hits.Enabled)
        {
            _metrics.HitL2();
        }

        Lifetimes lifetimes = _settings.JitteredLifetimes(options?.Expiration, options?.LocalExpiration, options?.JitterRatio);
        _publisher.PublishLocal(flight.Key, flight.Ticket, stored, policy, lifetimes.LocalFor(stored.Value is null), flags);
        flight.Complete(stored.Value);
    }
}
