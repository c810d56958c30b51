using System.Diagnostics;

namespace CacheGuard.Internal;

/// <summary>The miss path: one coalesced flight per key runs L2, then the loader, then writes both levels.</summary>
internal sealed partial class DefaultCoalescingCache
{
    private ValueTask<T> GetOrLoadSlow<TState, T>(string key, TState state, Func<TState, CancellationToken, Task<T>> loader, CacheEntryOptions? options, object? found, CancellationToken cancellationToken)
    {
        ValidateKey(key);
        ArgumentNullException.ThrowIfNull(loader);
        if (found is CacheItem cached && cached is not CacheItem<T>)
        {
            throw new CacheTypeMismatchException(key, cached.ValueType, typeof(T));
        }

        options?.Validate();
        CacheEntryFlags flags = options?.Flags ?? CacheEntryFlags.None;
        if ((flags & CacheEntryFlags.DisableUnderlyingData) != 0)
        {
            // No loader: a lookup, which must not start a flight that loader-carrying callers could join.
            return ValueOf(TryGetSlow<T>(key, flags, cancellationToken));
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        if (_metrics.Misses.Enabled)
        {
            _metrics.Miss();
        }

        Flight<string, T>? flight = _flights.JoinOrStart<T>(key, cancellationToken.CanBeCanceled, out bool started, out Flight<string>? running);
        if (flight is null)
        {
            throw new CacheTypeMismatchException(key, running!.ValueType, typeof(T));
        }

        if (!started)
        {
            if (_metrics.Coalesced.Enabled)
            {
                _metrics.Joined();
            }

            return new ValueTask<T>(flight.WaitAsync(cancellationToken));
        }

        // The leader runs the load. If it finished synchronously (an L1 race, or a synchronous loader with no L2) its
        // result is returned as is; otherwise the leader waits like any other caller, so its token ends only its wait.
        ValueTask<T> load = LoadAsync(flight, state, loader, options, flags);
        return load.IsCompleted ? load : new ValueTask<T>(flight.WaitAsync(cancellationToken));

        static async ValueTask<T> ValueOf(ValueTask<CacheLookup<T>> lookup) => (await lookup.ConfigureAwait(false)).Value!;
    }

    private async ValueTask<T> LoadAsync<TState, T>(Flight<string, T> flight, TState state, Func<TState, CancellationToken, Task<T>> loader, CacheEntryOptions? options, CacheEntryFlags flags)
    {
        string key = flight.Key;
        try
        {
            if ((flags & CacheEntryFlags.DisableLocalCacheRead) == 0 && _l1.TryGetValue(key, out object? raced) && raced is CacheItem<T> current)
            {
                // Another flight filled L1 since this caller's miss, or the entry's tags need checking against L2.
                if (current.Tags is not null && !IsFresh(current))
                {
                    await RefreshTagsAsync(current.Tags).ConfigureAwait(false);
                }

                if (IsFresh(current))
                {
                    flight.Complete(current.Value);
                    return current.Value;
                }

                _l1.Remove(key);
            }

            EntryPlan plan = Plan(options);
            if (_l2 is not null && (flags & CacheEntryFlags.DisableDistributedCacheRead) == 0)
            {
                CacheItem<T>? stored = await ReadL2Async<T>(key).ConfigureAwait(false);
                if (stored is not null && stored.Tags is not null)
                {
                    await RefreshTagsAsync(stored.Tags).ConfigureAwait(false);
                    if (!TagsAllow(stored.CreatedTicks, stored.Tags, requireCurrentKnowledge: false))
                    {
                        stored = null; // invalidated by a tag: load afresh
                    }
                }

                if (stored is not null)
                {
                    if (_metrics.Hits.Enabled)
                    {
                        _metrics.HitL2();
                    }

                    if ((flags & CacheEntryFlags.DisableLocalCacheWrite) == 0)
                    {
                        TimeSpan remaining = TimeSpan.FromTicks(stored.ExpiresTicks - _time.GetUtcNow().UtcTicks);
                        SetL1(key, stored, Min(stored.Value is null ? plan.NegativeLocal : plan.Local, remaining));
                    }

                    flight.Complete(stored.Value);
                    return stored.Value;
                }
            }

            // The entry's creation time is when the load started: a tag invalidated while it ran must win over it.
            long createdTicks = _time.GetUtcNow().UtcTicks;
            long started = _time.GetTimestamp();
            T value;
            using (Activity? activity = CacheTelemetry.Start(CacheTelemetry.LoadActivity, _name, key, _keysInTelemetry))
            {
                try
                {
                    value = await (loader(state, flight.WorkToken) ?? throw new InvalidOperationException($"The loader for cache key '{key}' returned a null Task.")).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    _metrics.LoaderError();
                    Log.LoaderFailed(_logger, _name, key, ex);
                    CacheTelemetry.Fail(activity, ex.GetType().FullName!, ex);
                    throw;
                }
            }

            TimeSpan took = _time.GetElapsedTime(started);
            _metrics.Load(took);
            await StoreAsync(key, value, plan, createdTicks, took, options?.Tags, flags, flight, CancellationToken.None).ConfigureAwait(false);
            flight.Complete(value);
            return value;
        }
        catch (Exception ex)
        {
            flight.Fail(ex);
            throw;
        }
    }

    /// <summary>Writes a value to L2, then L1: so L1 never holds what L2 was not at least offered.</summary>
    private ValueTask StoreAsync<T>(string key, T value, EntryPlan plan, long createdTicks, TimeSpan loadDuration, IReadOnlyList<string>? tags, CacheEntryFlags flags, Flight<string>? flight, CancellationToken cancellationToken)
    {
        bool notFound = value is null;
        if (notFound && _negativeExpiration == TimeSpan.Zero)
        {
            return ValueTask.CompletedTask; // negative caching is off: absence is not remembered anywhere
        }

        long now = _time.GetUtcNow().UtcTicks;
        TimeSpan lifetime = notFound ? plan.Negative : plan.Distributed;
        var item = new CacheItem<T>(value, Math.Min(createdTicks, now), now + lifetime.Ticks, tags is { Count: > 0 } ? [.. tags] : null);
        TimeSpan local = notFound ? plan.NegativeLocal : plan.Local;
        bool writeL1 = (flags & CacheEntryFlags.DisableLocalCacheWrite) == 0;
        if (_l2 is null || (flags & CacheEntryFlags.DisableDistributedCacheWrite) != 0)
        {
            if (writeL1 && flight?.Superseded != true)
            {
                SetL1(key, item, local);
            }

            return ValueTask.CompletedTask;
        }

        return WriteBothAsync(this, key, item, lifetime, writeL1 ? local : TimeSpan.Zero, loadDuration, flight, cancellationToken);

        static async ValueTask WriteBothAsync(DefaultCoalescingCache self, string key, CacheItem<T> item, TimeSpan lifetime, TimeSpan local, TimeSpan loadDuration, Flight<string>? flight, CancellationToken cancellationToken)
        {
            if (flight?.Superseded == true)
            {
                return;
            }

            await self.WriteL2Async(key, item, lifetime, loadDuration, cancellationToken).ConfigureAwait(false);
            if (flight?.Superseded != true)
            {
                self.SetL1(key, item, local);
            }
        }
    }

    /// <summary>Resolves an entry's lifetimes, jittered with one random sample so L1 stays within L2.</summary>
    private EntryPlan Plan(CacheEntryOptions? options)
    {
        TimeSpan distributed = options?.Expiration ?? _defaultExpiration;
        TimeSpan local = Min(options?.LocalExpiration ?? _defaultLocalExpiration ?? distributed, distributed);
        double ratio = options?.JitterRatio ?? _jitterRatio;
        double sample = ratio > 0 ? _random() : 0;

        TimeSpan jitteredDistributed = Jitter.Apply(distributed, ratio, sample);
        TimeSpan jitteredNegative = Jitter.Apply(_negativeExpiration, ratio, sample);
        TimeSpan jitteredLocal = Min(Jitter.Apply(local, ratio, sample), jitteredDistributed);
        return new EntryPlan(jitteredDistributed, jitteredLocal, jitteredNegative, Min(jitteredNegative, jitteredLocal));
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>The jittered lifetimes of one write.</summary>
    private readonly record struct EntryPlan(TimeSpan Distributed, TimeSpan Local, TimeSpan Negative, TimeSpan NegativeLocal);
}
