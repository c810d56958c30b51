
namespace CacheGuard.Internal;

/// <summary>
/// Batch loading. Per-key coalescing holds across single and batch calls because a batch joins or starts one flight
/// per key in the same table: keys it joins are awaited, keys it starts are resolved from one batched L2 read and then
/// one loader call, and single callers that arrive meanwhile join those flights.
/// </summary>
internal sealed partial class DefaultCoalescingCache
{
    /// <summary>Gets how many batched L2 reads were made: a test hook.</summary>
    internal int BatchedL2Reads => Volatile.Read(ref _batchedL2Reads);

    private int _batchedL2Reads;

    public ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<T>(IEnumerable<string> keys, Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(loader);
        return GetOrLoadManyAsync(keys, loader, static (load, missing, ct) => load(missing, ct), options, cancellationToken);
    }

    public ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<TState, T>(IEnumerable<string> keys, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(loader);
        options?.Validate();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<IReadOnlyDictionary<string, T>>(cancellationToken);
        }

        // 1. Distinct, validated keys; L1 hits answer at once.
        var results = new Dictionary<string, T>(StringComparer.Ordinal);
        var missing = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        CacheEntryFlags flags = options?.Flags ?? CacheEntryFlags.None;
        foreach (string key in keys)
        {
            ValidateKey(key);
            if (!seen.Add(key))
            {
                continue;
            }

            if ((flags & CacheEntryFlags.DisableLocalCacheRead) == 0 && _l1.TryGetValue(key, out object? found))
            {
                if (L1Slot.OtherType<T>(found) is { } cachedType)
                {
                    throw new CacheTypeMismatchException(key, cachedType, typeof(T));
                }

                if (L1Slot.AsItem<T>(found) is { } item && IsFresh(item))
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

        // 2. Join the keys others are loading; lead the rest.
        var joined = new List<Flight<string, T>>();
        var led = new List<Flight<string, T>>();
        try
        {
            foreach (string key in missing)
            {
                Flight<string, T>? flight = _flights.JoinOrStart<T>(key, cancellable: false, out bool started, out Flight<string>? running);
                if (flight is null)
                {
                    throw new CacheTypeMismatchException(key, running!.ValueType, typeof(T));
                }

                (started ? led : joined).Add(flight);
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
        Task<IReadOnlyDictionary<string, T>> all = CompleteBatchAsync(results, joined, led, state, loader, options, flags);
        return new ValueTask<IReadOnlyDictionary<string, T>>(cancellationToken.CanBeCanceled ? all.WaitAsync(cancellationToken) : all);
    }

    private async Task<IReadOnlyDictionary<string, T>> CompleteBatchAsync<TState, T>(Dictionary<string, T> results, List<Flight<string, T>> joined, List<Flight<string, T>> led, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options, CacheEntryFlags flags)
    {
        if (led.Count > 0)
        {
            await LoadBatchAsync(led, state, loader, options, flags).ConfigureAwait(false);
        }

        // Every flight this batch waits on, led or joined, is complete or will be: gather (a failure surfaces here).
        foreach (Flight<string, T> flight in led.Concat(joined))
        {
            T value = await flight.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            if (value is not null)
            {
                results[flight.Key] = value;
            }
        }

        return results;
    }

    private async Task LoadBatchAsync<TState, T>(List<Flight<string, T>> led, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options, CacheEntryFlags flags)
    {
        Policy policy = Resolve(options);
        try
        {
            // Another flight may have filled L1 between this batch's miss and its start: don't load those keys twice.
            List<Flight<string, T>> toLoad = led;
            if ((flags & CacheEntryFlags.DisableLocalCacheRead) == 0)
            {
                toLoad = new List<Flight<string, T>>(led.Count);
                foreach (Flight<string, T> flight in led)
                {
                    if (_l1.TryGetValue(flight.Key, out object? raced) && L1Slot.AsItem<T>(raced) is { } current && IsFresh(current))
                    {
                        flight.Complete(current.Value);
                    }
                    else
                    {
                        toLoad.Add(flight);
                    }
                }
            }

            // 3. One batched L2 read for the keys this batch leads.
            if (_l2 is not null && (flags & CacheEntryFlags.DisableDistributedCacheRead) == 0 && toLoad.Count > 0)
            {
                List<Flight<string, T>> toRead = toLoad;
                CacheItem<T>?[] stored = await ReadManyL2Async<T>(toRead).ConfigureAwait(false);
                toLoad = new List<Flight<string, T>>(toRead.Count);
                long now = _time.GetUtcNow().UtcTicks;
                for (int i = 0; i < toRead.Count; i++)
                {
                    CacheItem<T>? item = stored[i];
                    if (item is not null && !await SurvivesInvalidationAsync(item).ConfigureAwait(false))
                    {
                        item = null;
                    }

                    if (item is null || item.ExpiresTicks <= now)
                    {
                        toLoad.Add(toRead[i]);
                        continue;
                    }

                    if (_metrics.Hits.Enabled)
                    {
                        _metrics.HitL2();
                    }

                    if ((flags & CacheEntryFlags.DisableLocalCacheWrite) == 0)
                    {
                        Lifetimes lifetimes = JitteredLifetimes(options?.Expiration, options?.LocalExpiration, options?.JitterRatio);
                        SetL1(toRead[i].Key, item, policy, item.Value is null ? lifetimes.NegativeLocal : lifetimes.Local);
                    }

                    toRead[i].Complete(item.Value);
                }
            }

            if (toLoad.Count == 0)
            {
                return;
            }

            // 4. One loader call with only the keys still missing.
            var keys = new string[toLoad.Count];
            for (int i = 0; i < keys.Length; i++)
            {
                keys[i] = toLoad[i].Key;
            }

            long createdTicks = _time.GetUtcNow().UtcTicks;
            long started = _time.GetTimestamp();
            IReadOnlyDictionary<string, T> loaded;
            try
            {
                loaded = await (loader(state, keys, CancellationToken.None) ?? throw new InvalidOperationException("The batch loader returned a null Task.")).ConfigureAwait(false)
                    ?? throw new InvalidOperationException("The batch loader returned a null dictionary.");
            }
            catch (Exception ex)
            {
                _metrics.LoaderError();
                Log.LoaderFailed(_logger, _name, "(batch)", ex);
                throw;
            }

            TimeSpan took = _time.GetElapsedTime(started);
            _metrics.Load(took);

            // 5. Store what was found, cache absence for what was not, and answer each key's waiters.
            var stores = new List<Task>(toLoad.Count);
            foreach (Flight<string, T> flight in toLoad)
            {
                T value = loaded.TryGetValue(flight.Key, out T? found) ? found : default!;
                stores.Add(StoreAndCompleteAsync(flight, value, options, flags, createdTicks, took));
            }

            await Task.WhenAll(stores).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The loader (or anything before it) failed: every caller waiting on any of its keys gets the exception.
            foreach (Flight<string, T> flight in led)
            {
                flight.Fail(ex);
            }
        }
    }

    private async Task StoreAndCompleteAsync<T>(Flight<string, T> flight, T value, CacheEntryOptions? options, CacheEntryFlags flags, long createdTicks, TimeSpan took)
    {
        try
        {
            await StoreLoadedAsync(flight.Key, value, options, flags, null, createdTicks, took, flight).ConfigureAwait(false);
        }
        finally
        {
            flight.Complete(value);
        }
    }

    /// <summary>Reads every key in one batched call when the L2 supports it; otherwise concurrently. Failures are misses.</summary>
    private async Task<CacheItem<T>?[]> ReadManyL2Async<T>(List<Flight<string, T>> flights)
    {
        var items = new CacheItem<T>?[flights.Count];
        if (_l2Batch is { } batch)
        {
            if (!L2Allowed())
            {
                return items;
            }

            var l2Keys = new string[flights.Count];
            for (int i = 0; i < l2Keys.Length; i++)
            {
                l2Keys[i] = L2Key(flights[i].Key);
            }

            using var deadline = new L2Deadline(_l2Timeout, _time, CancellationToken.None);
            try
            {
                Interlocked.Increment(ref _batchedL2Reads);
                ValueTask<byte[]?[]> pending = batch.GetManyAsync(l2Keys, deadline.Token);
                byte[]?[] payloads = pending.IsCompletedSuccessfully ? pending.Result : await BoundAsync(pending.AsTask(), deadline.Token).ConfigureAwait(false);
                L2Succeeded();
                for (int i = 0; i < items.Length && i < payloads.Length; i++)
                {
                    items[i] = payloads[i] is { } payload ? Decode<T>(flights[i].Key, payload) : null;
                }
            }
            catch (OperationCanceledException) when (deadline.TimedOut)
            {
                ReportL2Failure(OperationRead, "(batch)", null);
            }
#pragma warning disable CA1031 // An L2 failure is a miss for every key of the batch.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                ReportL2Failure(OperationRead, "(batch)", ex);
            }

            return items;
        }

        // No batch support: the reads go out together (a pipelining client sends them in one write).
        Interlocked.Increment(ref _batchedL2Reads);
        var reads = new Task<CacheItem<T>?>[flights.Count];
        for (int i = 0; i < reads.Length; i++)
        {
            reads[i] = ReadL2Async<T>(flights[i].Key).AsTask();
        }

        return await Task.WhenAll(reads).ConfigureAwait(false);
    }
}
