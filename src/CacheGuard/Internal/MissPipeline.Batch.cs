namespace CacheGuard.Internal;

/// <summary>
/// Batch loading: one flight per key in the same table as single loads, so per-key coalescing holds across single and
/// batch calls. The keys a batch leads go through the same stages as a single load, each stage done once for all of
/// them: L1 re-check, one batched L2 read, one pipelined lock attempt, one loader call, then the publish step per key.
/// Callers wait within their own soft and hard timeouts, per key, as single callers do.
/// </summary>
internal sealed partial class MissPipeline
{
    public ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<TState, T>(IEnumerable<string> keys, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(loader);
        options?.Validate();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<IReadOnlyDictionary<string, T>>(cancellationToken);
        }

        // 1. Distinct, validated keys; fresh L1 copies answer at once.
        var results = new Dictionary<string, T>(StringComparer.Ordinal);
        var missing = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        CacheEntryFlags flags = options?.Flags ?? CacheEntryFlags.None;
        foreach (string key in keys)
        {
            _settings.ValidateKey(key);
            if (!seen.Add(key))
            {
                continue;
            }

            if ((flags & CacheEntryFlags.DisableLocalCacheRead) == 0 && _l1.TryGet(key, out object? found))
            {
                if (L1Slot.OtherType<T>(found) is { } cachedType)
                {
                    throw _settings.TypeMismatch(key, cachedType, typeof(T));
                }

                if (L1Slot.AsItem<T>(found) is { } item && _hits.Check(item, allowRefresh: false) == HitDecision.Serve)
                {
                    if (item.Value is not null)
                    {
                        results[key] = item.Value;
                    }

                    continue;
                }
            }

            missing.Add(key);
        }

        if (missing.Count == 0)
        {
            return new ValueTask<IReadOnlyDictionary<string, T>>(results);
        }

        if ((flags & CacheEntryFlags.DisableUnderlyingData) != 0)
        {
            return LookupManyAsync(results, missing, flags, cancellationToken);
        }

        // 2. Join the keys others are loading; lead the rest.
        Policy policy = _settings.Resolve(options);
        bool mayBeTagged = MayBeTagged(options, wantsContext: false);
        var flights = new List<Flight<string, T>>(missing.Count);
        var led = new List<Flight<string, T>>();
        try
        {
            foreach (string key in missing)
            {
                Ticket ticket = _versions.Capture(key, _settings.NowTicks);
                Flight<string, T> flight = Flights.JoinOrStart<T>(key, ticket, mayBeTagged, cancellable: false, out bool started, out Flight<string>? running)
                    ?? throw _settings.TypeMismatch(key, running!.ValueType, typeof(T));
                flights.Add(flight);
                if (started)
                {
                    led.Add(flight);
                }
            }
        }
        catch (Exception ex)
        {
            foreach (Flight<string, T> flight in led)
            {
                flight.Fail(ex);
            }

            throw;
        }

        _metrics.Misses.Add(missing.Count);
        if (led.Count > 0)
        {
            Task run = RunBatchAsync(led, state, loader, options, policy, flags);
            foreach (Flight<string, T> flight in led)
            {
                flight.Run = run;
            }
        }

        return GatherAsync(results, flights, policy, cancellationToken);
    }

    /// <summary>Collects every key's outcome, each within this caller's timeouts; a key's error (or timeout) fails the call.</summary>
    private async ValueTask<IReadOnlyDictionary<string, T>> GatherAsync<T>(Dictionary<string, T> results, List<Flight<string, T>> flights, Policy policy, CancellationToken cancellationToken)
    {
        // All waits start now, so each key's timeout counts from this call, not from the previous key's answer.
        var waits = new Task<T>[flights.Count];
        for (int i = 0; i < waits.Length; i++)
        {
            waits[i] = WaitAsync(flights[i], policy, cancellationToken).AsTask();
        }

        Exception? first = null;
        for (int i = 0; i < waits.Length; i++)
        {
            try
            {
                T value = await waits[i].ConfigureAwait(false);
                if (value is not null)
                {
                    results[flights[i].Key] = value;
                }
            }
            catch (Exception ex) when (first is null)
            {
                first = ex; // the rest are still awaited, so none is left unobserved
            }
#pragma warning disable CA1031 // Already failing with the first key's exception; the others are observed and dropped.
            catch (Exception)
#pragma warning restore CA1031
            {
                continue;
            }
        }

        return first is null ? results : throw first;
    }

    private async ValueTask<IReadOnlyDictionary<string, T>> LookupManyAsync<T>(Dictionary<string, T> results, List<string> missing, CacheEntryFlags flags, CancellationToken cancellationToken)
    {
        foreach (string key in missing)
        {
            CacheLookup<T> lookup = await LookupAsync<T>(key, flags, cancellationToken).ConfigureAwait(false);
            if (lookup.Found)
            {
                results[key] = lookup.Value!;
            }
        }

        return results;
    }

    /// <summary>Runs the stages for the keys a batch leads; every outcome ends in a flight, so this never throws.</summary>
    private async Task RunBatchAsync<TState, T>(List<Flight<string, T>> led, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options, Policy policy, CacheEntryFlags flags)
    {
        var leases = new List<(string Key, IAsyncDisposable Lease)>();
        try
        {
            List<Flight<string, T>> pending = led;

            // 1. L1 again: another flight may have filled it since this batch's miss.
            if ((flags & CacheEntryFlags.DisableLocalCacheRead) == 0)
            {
                pending = new List<Flight<string, T>>(led.Count);
                foreach (Flight<string, T> flight in led)
                {
                    CacheItem<T>? current = L1Slot.AsItem<T>(_l1.TryGet(flight.Key, out object? inL1) ? inL1 : null);
                    if (current is null || !await ServeFromL1Async(flight, current).ConfigureAwait(false))
                    {
                        pending.Add(flight);
                    }
                }
            }

            // 2. One batched L2 read.
            if (_l2 is not null && (flags & CacheEntryFlags.DisableDistributedCacheRead) == 0 && pending.Count > 0)
            {
                CacheItem<T>?[] stored = await _l2.ReadManyAsync<T>(KeysOf(pending)).ConfigureAwait(false);
                var next = new List<Flight<string, T>>(pending.Count);
                long now = _settings.NowTicks;
                for (int i = 0; i < pending.Count; i++)
                {
                    CacheItem<T>? item = stored[i];
                    if (item is not null && !await _tags.SurvivesAsync(item).ConfigureAwait(false))
                    {
                        item = null;
                    }

                    if (item is not null && item.ExpiresTicks > now)
                    {
                        CompleteFromL2(pending[i], item, options, policy, flags);
                        continue;
                    }

                    if (item is not null && policy.FailSafe && now < item.ExpiresTicks + policy.FailSafeMax.Ticks)
                    {
                        pending[i].OfferStale(item, item.ExpiresTicks + policy.FailSafeMax.Ticks);
                    }

                    next.Add(pending[i]);
                }

                pending = next;
            }

            // 3. The distributed lock: one pipelined attempt. What this batch holds (or may load without the lock) is loaded
            // and released first; only then does it wait for the keys other nodes are loading, and loads each whose owner
            // left no value as soon as that is known. It never holds a lock while it waits for another.
            List<Flight<string, T>>? held = null;
            if (_lock.Enabled && pending.Count > 0)
            {
                LockOutcome<T>[] outcomes = await _lock.TryAcquireManyAsync<T>(KeysOf(pending)).ConfigureAwait(false);
                var next = new List<Flight<string, T>>(pending.Count);
                for (int i = 0; i < pending.Count; i++)
                {
                    if (outcomes[i].Found is { } fromOwner)
                    {
                        CompleteFromL2(pending[i], fromOwner, options, policy, flags);
                        continue;
                    }

                    if (outcomes[i].Held)
                    {
                        (held ??= []).Add(pending[i]);
                        continue;
                    }

                    if (outcomes[i].Lease is { } lease)
                    {
                        leases.Add((pending[i].Key, lease));
                    }

                    next.Add(pending[i]);
                }

                pending = next;
            }

            // 4. One loader call for what is left (and one per key whose owner on another node left no value).
            var followers = new List<(Flight<string, T> Flight, Flight<string, T> Current)>();
            if (pending.Count > 0)
            {
                followers.AddRange(await LoadBatchAsync(pending, state, loader, options, policy, flags).ConfigureAwait(false));
            }

            await ReleaseAllAsync(leases).ConfigureAwait(false);
            if (held is not null)
            {
                followers.AddRange(await AwaitOwnersAsync(held, state, loader, options, policy, flags).ConfigureAwait(false));
            }

            await FollowAsync(followers).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Every outcome belongs to the flights' callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            foreach (Flight<string, T> flight in led)
            {
                flight.Fail(ex); // completes only those not completed yet
            }
        }
        finally
        {
            await ReleaseAllAsync(leases).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits for the other nodes' loads of <paramref name="held"/>, each key on its own: a key whose owner left no value is
    /// loaded here as soon as that is known (under the lock it took over, released right after), not once every other
    /// owner has finished too. Holding a taken-over lock while waiting for another key's owner would stall every node's
    /// callers of that key for as long as that other owner takes, and two batches on two nodes doing so could wait for
    /// each other until <see cref="CoalescingCacheOptions.DistributedLoadLockTimeout"/>. Returns the flights replaced
    /// before loading (see <see cref="LoadBatchAsync"/>), to follow once this batch holds no lock.
    /// </summary>
    private async Task<List<(Flight<string, T> Flight, Flight<string, T> Current)>> AwaitOwnersAsync<TState, T>(List<Flight<string, T>> held, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options, Policy policy, CacheEntryFlags flags)
    {
        var waits = new Task<List<(Flight<string, T> Flight, Flight<string, T> Current)>>[held.Count];
        for (int i = 0; i < waits.Length; i++)
        {
            waits[i] = AwaitOwnerThenLoadAsync(held[i], state, loader, options, policy, flags);
        }

        var followers = new List<(Flight<string, T> Flight, Flight<string, T> Current)>();
        foreach (List<(Flight<string, T> Flight, Flight<string, T> Current)> replaced in await Task.WhenAll(waits).ConfigureAwait(false))
        {
            followers.AddRange(replaced);
        }

        return followers;
    }

    /// <summary>One key another node was loading: its owner's value from L2, or a load here (under the lock taken over, if any).</summary>
    private async Task<List<(Flight<string, T> Flight, Flight<string, T> Current)>> AwaitOwnerThenLoadAsync<TState, T>(Flight<string, T> flight, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options, Policy policy, CacheEntryFlags flags)
    {
        LockOutcome<T> outcome = await _lock.AwaitOwnerAsync<T>(flight.Key).ConfigureAwait(false);
        if (outcome.Found is { } fromOwner)
        {
            CompleteFromL2(flight, fromOwner, options, policy, flags);
            return [];
        }

        try
        {
            return await LoadBatchAsync([flight], state, loader, options, policy, flags).ConfigureAwait(false);
        }
        finally
        {
            if (outcome.Lease is { } lease)
            {
                await _lock.ReleaseAsync(lease, flight.Key).ConfigureAwait(false);
            }
        }
    }

    private async Task ReleaseAllAsync(List<(string Key, IAsyncDisposable Lease)> leases)
    {
        foreach ((string key, IAsyncDisposable lease) in leases)
        {
            await _lock.ReleaseAsync(lease, key).ConfigureAwait(false);
        }

        leases.Clear();
    }

    private static string[] KeysOf<T>(List<Flight<string, T>> flights)
    {
        var keys = new string[flights.Count];
        for (int i = 0; i < keys.Length; i++)
        {
            keys[i] = flights[i].Key;
        }

        return keys;
    }
}
