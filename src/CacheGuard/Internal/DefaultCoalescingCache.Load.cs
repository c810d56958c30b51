using System.Diagnostics;

namespace CacheGuard.Internal;

/// <summary>
/// The miss path: one coalesced flight per key runs L1 re-check → L2 → loader → L2 write → L1 write. Fail-safe, loader
/// timeouts and background refresh live here too, because each is a decision about what a flight's callers get.
/// </summary>
internal sealed partial class DefaultCoalescingCache
{
    private ValueTask<T> GetOrLoadSlow<TState, T>(string key, TState state, Loader<TState, T> loader, CacheEntryOptions? options, object? found, CancellationToken cancellationToken)
    {
        ValidateKey(key);
        if (loader.IsNull)
        {
            throw new ArgumentNullException(nameof(loader));
        }

        if (L1Slot.OtherType<T>(found) is { } cachedType)
        {
            throw new CacheTypeMismatchException(key, cachedType, typeof(T));
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
        ValueTask<T> load = LoadAsync(flight, state, loader, options, flags, found as CacheItem<T>, refreshOf: null);
        if (load.IsCompletedSuccessfully)
        {
            T value = load.Result;
            _flights.Recycle(flight);
            return new ValueTask<T>(value);
        }

        return load.IsCompleted ? load : new ValueTask<T>(flight.WaitAsync(cancellationToken));

        static async ValueTask<T> ValueOf(ValueTask<CacheLookup<T>> lookup) => (await lookup.ConfigureAwait(false)).Value!;
    }

    /// <summary>Starts one background refresh of a key whose L1 copy is still being served (eager or probabilistic).</summary>
    private void StartRefresh<TState, T>(string key, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheItem<T> current)
    {
        Flight<string, T>? flight = _flights.TryStart<T>(key);
        if (flight is null)
        {
            return; // a load of the key is already running: it is the refresh
        }

        _metrics.EarlyRefresh();
        CacheEntryFlags flags = options?.Flags ?? CacheEntryFlags.None;
        TrackBackground(LoadAsync(flight, state, loader, options, flags, hint: null, refreshOf: current), key);
    }

    private async ValueTask<T> LoadAsync<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheEntryFlags flags, CacheItem<T>? hint, CacheItem<T>? refreshOf)
    {
        string key = flight.Key;
        try
        {
            Policy policy = Resolve(options);
            CacheItem<T>? stale = refreshOf;

            // 1. L1 again: another flight may have filled it since this caller's miss, or its copy may only need a tag check.
            if (refreshOf is null && (flags & CacheEntryFlags.DisableLocalCacheRead) == 0)
            {
                object? raced = _l1.TryGetValue(key, out object? inL1) ? inL1 : null;
                CacheItem<T>? current = L1Slot.AsItem<T>(raced) ?? hint;
                if (current is not null)
                {
                    HitDecision decision = CheckHit(current, allowRefresh: false);
                    if (decision == HitDecision.Unsure)
                    {
                        await RefreshTagsAsync(current.Tags!).ConfigureAwait(false);
                        decision = CheckHit(current, allowRefresh: false);
                    }

                    if (decision == HitDecision.Serve)
                    {
                        flight.Complete(current.Value);
                        return current.Value;
                    }

                    if (decision == HitDecision.Expired && current.FailSafe)
                    {
                        stale = current; // kept past its expiry for exactly this
                    }
                    else if (decision == HitDecision.Unsure && ReferenceEquals(raced, current))
                    {
                        _l1.Remove(key); // invalidated by a tag
                    }
                }
            }

            // 2. L2.
            if (_l2 is not null && (flags & CacheEntryFlags.DisableDistributedCacheRead) == 0)
            {
                CacheItem<T>? stored = await ReadL2Async<T>(key).ConfigureAwait(false);
                if (stored is not null && !await SurvivesInvalidationAsync(stored).ConfigureAwait(false))
                {
                    stored = null; // invalidated by a tag: neither fresh nor a stand-in
                }

                if (stored is not null)
                {
                    bool fresh = stored.ExpiresTicks > _time.GetUtcNow().UtcTicks;
                    bool newer = refreshOf is null || stored.CreatedTicks > refreshOf.CreatedTicks;
                    if (fresh && newer)
                    {
                        if (_metrics.Hits.Enabled)
                        {
                            _metrics.HitL2();
                        }

                        if ((flags & CacheEntryFlags.DisableLocalCacheWrite) == 0)
                        {
                            Lifetimes lifetimes = JitteredLifetimes(options?.Expiration, options?.LocalExpiration, options?.JitterRatio);
                            SetL1(key, stored, policy, stored.Value is null ? lifetimes.NegativeLocal : lifetimes.Local);
                        }

                        flight.Complete(stored.Value);
                        return stored.Value;
                    }

                    if (!fresh && stale is null && policy.FailSafe)
                    {
                        stale = stored; // L2 kept it past its expiry for fail-safe
                    }
                }
            }

            // 3. One node at a time across the fleet, when the distributed lock is on.
            IAsyncDisposable? lease = null;
            if (_loadLock is not null && _l2 is not null && refreshOf is null)
            {
                (lease, CacheItem<T>? fromOwner) = await AcquireOrAwaitLoadAsync<T>(key).ConfigureAwait(false);
                if (fromOwner is not null)
                {
                    if ((flags & CacheEntryFlags.DisableLocalCacheWrite) == 0)
                    {
                        Lifetimes lifetimes = JitteredLifetimes(options?.Expiration, options?.LocalExpiration, options?.JitterRatio);
                        SetL1(key, fromOwner, policy, fromOwner.Value is null ? lifetimes.NegativeLocal : lifetimes.Local);
                    }

                    flight.Complete(fromOwner.Value);
                    return fromOwner.Value;
                }
            }

            // 4. The loader; the lock, if held, is released only once the result is in L2.
            try
            {
                return await RunLoaderAsync(flight, state, loader, options, flags, policy, stale).ConfigureAwait(false);
            }
            finally
            {
                if (lease is not null)
                {
                    await lease.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex)
        {
            flight.Fail(ex);
            throw;
        }
    }

    private async ValueTask<T> RunLoaderAsync<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheEntryFlags flags, Policy policy, CacheItem<T>? stale)
    {
        string key = flight.Key;
        LoadContext<T>? context = loader.WantsContext
            ? new LoadContext<T>(key, stale is not null, stale is null ? default : stale.Value, stale is null ? null : new DateTimeOffset(stale.CreatedTicks, TimeSpan.Zero), options)
            : null;

        // The entry's creation time is when the load started: a tag invalidated while it ran must win over it.
        long createdTicks = _time.GetUtcNow().UtcTicks;
        long started = _time.GetTimestamp();
        using CancellationTokenSource? abandon = policy.HardTimeout is not null && !_allowBackgroundCompletion
            ? CancellationTokenSource.CreateLinkedTokenSource(flight.WorkToken)
            : null;

        Task<T> loading;
        Activity? activity = CacheTelemetry.Start(CacheTelemetry.LoadActivity, _name, key, _keysInTelemetry);
        try
        {
            loading = loader.Invoke(state, context, abandon?.Token ?? flight.WorkToken)
                ?? throw new InvalidOperationException($"The loader for cache key '{key}' returned a null Task.");
        }
#pragma warning disable CA1031 // A synchronous throw is the loader's outcome, handled like an asynchronous one below.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            loading = Task.FromException<T>(ex);
        }

        T value;
        try
        {
            value = await WaitForLoaderAsync(loading, policy, stale is not null, started).ConfigureAwait(false);
        }
        catch (LoaderTimeoutException timeout)
        {
            activity?.Dispose();
            bool hard = timeout.Hard;
            if (hard)
            {
                _metrics.LoaderTimeout();
                if (abandon is not null)
                {
                    await abandon.CancelAsync().ConfigureAwait(false);
                }
            }

            if (!hard || _allowBackgroundCompletion)
            {
                // The load goes on for the cache's sake, not for these callers.
                TrackBackground(FinishInBackgroundAsync(loading, key, options, flags, context, createdTicks, started, flight), key);
            }

            if (stale is not null && (!hard || policy.FailSafe))
            {
                return ServeStale(flight, stale, policy, hard ? "hard_timeout" : "soft_timeout", null);
            }

            throw new TimeoutException($"The loader for cache key '{key}' did not complete within LoaderHardTimeout ({policy.HardTimeout}).");
        }
        catch (Exception ex)
        {
            _metrics.LoaderError();
            string logKey = LogKey(key);
            Log.LoaderFailed(_logger, _name, logKey, ex);
            CacheTelemetry.Fail(activity, ex.GetType().FullName!, ex);
            activity?.Dispose();
            if (policy.FailSafe && stale is not null)
            {
                return ServeStale(flight, stale, policy, "error", ex);
            }

            throw;
        }

        activity?.Dispose();
        TimeSpan took = _time.GetElapsedTime(started);
        _metrics.Load(took);
        if (context?.CachingDisabled != true)
        {
            await StoreLoadedAsync(key, value, options, flags, context, createdTicks, took, flight).ConfigureAwait(false);
        }

        flight.Complete(value);
        return value;
    }

    /// <summary>Awaits the loader within the soft timeout (only when a stale value could stand in) and the hard timeout.</summary>
    private Task<T> WaitForLoaderAsync<T>(Task<T> loading, Policy policy, bool hasStale, long started) =>
        loading.IsCompleted || (policy.SoftTimeout is null && policy.HardTimeout is null)
            ? loading // nothing to bound: no wrapper task
            : WaitWithTimeoutsAsync(loading, policy, hasStale, started);

    private async Task<T> WaitWithTimeoutsAsync<T>(Task<T> loading, Policy policy, bool hasStale, long started)
    {
        if (hasStale && policy.SoftTimeout is { } soft && (policy.HardTimeout is null || soft < policy.HardTimeout))
        {
            try
            {
                return await loading.WaitAsync(soft, _time).ConfigureAwait(false);
            }
            catch (TimeoutException) when (!loading.IsCompleted)
            {
                throw new LoaderTimeoutException(hard: false);
            }
        }

        if (policy.HardTimeout is { } hardTimeout)
        {
            TimeSpan left = hardTimeout - _time.GetElapsedTime(started);
            try
            {
                return left > TimeSpan.Zero
                    ? await loading.WaitAsync(left, _time).ConfigureAwait(false)
                    : loading.IsCompleted ? await loading.ConfigureAwait(false) : throw new TimeoutException();
            }
            catch (TimeoutException) when (!loading.IsCompleted)
            {
                throw new LoaderTimeoutException(hard: true);
            }
        }

        return await loading.ConfigureAwait(false);
    }

    /// <summary>Completes a load its callers stopped waiting for, and caches the result if it is still wanted.</summary>
    private async Task FinishInBackgroundAsync<T>(Task<T> loading, string key, CacheEntryOptions? options, CacheEntryFlags flags, LoadContext<T>? context, long createdTicks, long started, Flight<string> flight)
    {
        T value = await loading.ConfigureAwait(false);
        TimeSpan took = _time.GetElapsedTime(started);
        _metrics.Load(took);
        if (context?.CachingDisabled != true)
        {
            await StoreLoadedAsync(key, value, options, flags, context, createdTicks, took, flight).ConfigureAwait(false);
        }
    }

    /// <summary>Hands a stale value to the flight's callers and re-arms it briefly, so the failing source is not hammered.</summary>
    private T ServeStale<T>(Flight<string, T> flight, CacheItem<T> stale, Policy policy, string reason, Exception? error)
    {
        _metrics.StaleServed(reason);
        Log.StaleValueServed(_logger, _name, LogKey(flight.Key), reason, error);
        if (!flight.Superseded)
        {
            long now = _time.GetUtcNow().UtcTicks;
            var rearmed = new CacheItem<T>(stale.Value, stale.CreatedTicks, now + policy.FailSafeThrottle.Ticks, stale.Tags, stale.LoadDurationTicks);
            SetL1(flight.Key, rearmed, policy, policy.FailSafeThrottle);
        }

        flight.Complete(stale.Value);
        return stale.Value;
    }

    private ValueTask StoreLoadedAsync<T>(string key, T value, CacheEntryOptions? options, CacheEntryFlags flags, LoadContext<T>? context, long createdTicks, TimeSpan took, Flight<string> flight)
    {
        Lifetimes lifetimes = context is null
            ? JitteredLifetimes(options?.Expiration, options?.LocalExpiration, options?.JitterRatio)
            : JitteredLifetimes(context.Expiration, context.LocalExpiration, options?.JitterRatio);
        return StoreAsync(key, value, Resolve(options), lifetimes, createdTicks, took, context is null ? options?.Tags : context.Tags, flags, flight, CancellationToken.None);
    }

    /// <summary>Writes a value to L2, then L1: so L1 never holds what L2 was not at least offered.</summary>
    private ValueTask StoreAsync<T>(string key, T value, Policy policy, Lifetimes lifetimes, long createdTicks, TimeSpan loadDuration, IReadOnlyList<string>? tags, CacheEntryFlags flags, Flight<string>? flight, CancellationToken cancellationToken)
    {
        bool notFound = value is null;
        if (notFound && _negativeExpiration == TimeSpan.Zero)
        {
            return ValueTask.CompletedTask; // negative caching is off: absence is not remembered anywhere
        }

        long now = _time.GetUtcNow().UtcTicks;
        TimeSpan lifetime = notFound ? lifetimes.Negative : lifetimes.Distributed;
        TimeSpan local = (flags & CacheEntryFlags.DisableLocalCacheWrite) == 0 ? (notFound ? lifetimes.NegativeLocal : lifetimes.Local) : TimeSpan.Zero;
        bool plain = tags is not { Count: > 0 } && !policy.FailSafe && policy.EagerRefreshThreshold is null && policy.Beta == 0;
        if (_l2 is null || (flags & CacheEntryFlags.DisableDistributedCacheWrite) != 0)
        {
            if (flight?.Superseded != true)
            {
                if (plain)
                {
                    // L1 only, nothing to check on hits: the value itself goes to L1, no item is made.
                    SetL1Plain(key, value, Min(local, lifetime));
                }
                else
                {
                    SetL1(key, new CacheItem<T>(value, Math.Min(createdTicks, now), now + lifetime.Ticks, tags is { Count: > 0 } ? [.. tags] : null, loadDuration.Ticks), policy, local, now);
                }
            }

            return ValueTask.CompletedTask;
        }

        var item = new CacheItem<T>(value, Math.Min(createdTicks, now), now + lifetime.Ticks, tags is { Count: > 0 } ? [.. tags] : null, loadDuration.Ticks);

        // Fail-safe keeps the L2 copy physically past its logical expiry (which the envelope carries).
        TimeSpan physical = policy.FailSafe ? lifetime + policy.FailSafeMax : lifetime;
        return WriteBothAsync(this, key, item, policy, physical, local, loadDuration, flight, cancellationToken);

        static async ValueTask WriteBothAsync(DefaultCoalescingCache self, string key, CacheItem<T> item, Policy policy, TimeSpan physical, TimeSpan local, TimeSpan loadDuration, Flight<string>? flight, CancellationToken cancellationToken)
        {
            if (flight?.Superseded == true)
            {
                return;
            }

            bool keepInL1 = await self.WriteL2Async(key, item, physical, loadDuration, cancellationToken).ConfigureAwait(false);
            if (keepInL1 && flight?.Superseded != true)
            {
                self.SetL1(key, item, policy, local);
            }

            if (flight is not null && self._backplane is not null)
            {
                // A completed load: other nodes drop their copies, without making this load's callers wait.
                self.TrackBackground(self.PublishAsync(key, null, CancellationToken.None).AsTask(), key);
            }
        }
    }

    /// <summary>Places a plain entry's value in L1 as it is, for <paramref name="localLifetime"/>.</summary>
    private void SetL1Plain<T>(string key, T value, TimeSpan localLifetime)
    {
        if (localLifetime <= TimeSpan.Zero)
        {
            return;
        }

        using Microsoft.Extensions.Caching.Memory.ICacheEntry entry = _l1.CreateEntry(key);
        entry.Value = L1Slot.Wrap(value);
        entry.AbsoluteExpirationRelativeToNow = localLifetime;
        if (_sized)
        {
            entry.Size = 1;
        }
    }

    /// <summary>Places an item in L1 with the bookkeeping its hits need, for <paramref name="localLifetime"/> (capped at its L2 expiry).</summary>
    private void SetL1<T>(string key, CacheItem<T> item, Policy policy, TimeSpan localLifetime, long now = 0)
    {
        now = now > 0 ? now : _time.GetUtcNow().UtcTicks;
        long localExpires = Math.Min(now + localLifetime.Ticks, item.ExpiresTicks);
        if (localExpires <= now)
        {
            return;
        }

        object stored;
        if (item.State is not null || policy.FailSafe || policy.EagerRefreshThreshold is not null || policy.Beta > 0)
        {
            ItemState state = item.EnsureState();
            state.LocalExpiresTicks = localExpires;
            state.FailSafe = policy.FailSafe;
            state.RefreshAtTicks = policy.EagerRefreshThreshold is { } threshold ? now + (long)((localExpires - now) * threshold) : long.MaxValue;
            state.Beta = policy.Beta;
            stored = item;
        }
        else
        {
            stored = L1Slot.Wrap(item.Value);
        }

        long physicalEnd = policy.FailSafe ? Math.Max(localExpires, item.ExpiresTicks) + policy.FailSafeMax.Ticks : localExpires;
        using Microsoft.Extensions.Caching.Memory.ICacheEntry entry = _l1.CreateEntry(key);
        entry.Value = stored;
        entry.AbsoluteExpirationRelativeToNow = TimeSpan.FromTicks(physicalEnd - now);
        if (_sized)
        {
            entry.Size = 1;
        }
    }

    /// <summary>Decides what a hit on an L1 copy may do.</summary>
    private HitDecision CheckHit(CacheItem item, bool allowRefresh)
    {
        long now = _time.GetUtcNow().UtcTicks;
        if (now >= item.LocalExpiresTicks)
        {
            return HitDecision.Expired;
        }

        if (item.Tags is { } tags && !TagsAllow(item.CreatedTicks, tags, requireCurrentKnowledge: true))
        {
            return HitDecision.Unsure;
        }

        if (allowRefresh
            && item.State is { } state
            && (now >= state.RefreshAtTicks || (state.Beta > 0 && XFetch.ShouldRefresh(now, state.LocalExpiresTicks, item.LoadDurationTicks, state.Beta, _random())))
            && state.TryStartRefresh())
        {
            return HitDecision.ServeAndRefresh;
        }

        return HitDecision.Serve;
    }

    /// <summary>Whether an L1 copy may be served as it is, by callers that cannot start a refresh.</summary>
    private bool IsFresh(CacheItem item) => !item.NeedsCheck || CheckHit(item, allowRefresh: false) == HitDecision.Serve;

    /// <summary>Resolves the non-lifetime policy of a call: options over the cache defaults.</summary>
    private Policy Resolve(CacheEntryOptions? options) => options is null
        ? _defaultPolicy
        : new Policy(
            options.FailSafe ?? _defaultPolicy.FailSafe,
            options.FailSafeMaxDuration ?? _defaultPolicy.FailSafeMax,
            options.FailSafeThrottleDuration ?? _defaultPolicy.FailSafeThrottle,
            options.LoaderSoftTimeout ?? _defaultPolicy.SoftTimeout,
            options.LoaderHardTimeout ?? _defaultPolicy.HardTimeout,
            options.EagerRefreshThreshold ?? _defaultPolicy.EagerRefreshThreshold,
            options.ProbabilisticEarlyRefresh is { } xfetch ? (xfetch ? _beta : 0) : _defaultPolicy.Beta);

    /// <summary>Resolves an entry's lifetimes, jittered with one random sample so L1 stays within L2.</summary>
    private Lifetimes JitteredLifetimes(TimeSpan? expiration, TimeSpan? localExpiration, double? jitterRatio)
    {
        TimeSpan distributed = expiration ?? _defaultExpiration;
        TimeSpan local = Min(localExpiration ?? _defaultLocalExpiration ?? distributed, distributed);
        double ratio = jitterRatio ?? _jitterRatio;
        double sample = ratio > 0 ? _random() : 0;

        TimeSpan jitteredDistributed = Jitter.Apply(distributed, ratio, sample);
        TimeSpan jitteredNegative = Jitter.Apply(_negativeExpiration, ratio, sample);
        TimeSpan jitteredLocal = Min(Jitter.Apply(local, ratio, sample), jitteredDistributed);
        return new Lifetimes(jitteredDistributed, jitteredLocal, jitteredNegative, Min(jitteredNegative, jitteredLocal));
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>Observes background work: counted while it runs, its failure logged, never left unobserved.</summary>
    private void TrackBackground<T>(ValueTask<T> work, string key) => TrackBackground(work.AsTask(), key);

    private void TrackBackground(Task work, string key)
    {
        Interlocked.Increment(ref _backgroundCount);
        _ = ObserveAsync(this, work, key);

        static async Task ObserveAsync(DefaultCoalescingCache self, Task work, string key)
        {
            try
            {
                await work.ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Background work has no caller to throw to: log it.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.BackgroundLoadFailed(self._logger, self._name, self.LogKey(key), ex);
            }
            finally
            {
                Interlocked.Decrement(ref self._backgroundCount);
            }
        }
    }

    private enum HitDecision
    {
        Serve,
        ServeAndRefresh,
        Expired,
        Unsure,
    }

    /// <summary>The jittered lifetimes of one write.</summary>
    private readonly record struct Lifetimes(TimeSpan Distributed, TimeSpan Local, TimeSpan Negative, TimeSpan NegativeLocal);

    /// <summary>A call's resilience policy: per-entry options over the cache defaults.</summary>
    private readonly record struct Policy(
        bool FailSafe,
        TimeSpan FailSafeMax,
        TimeSpan FailSafeThrottle,
        TimeSpan? SoftTimeout,
        TimeSpan? HardTimeout,
        double? EagerRefreshThreshold,
        double Beta);

    /// <summary>Either kind of loader a caller can pass, without a closure to adapt one to the other.</summary>
    private readonly struct Loader<TState, T>(Func<TState, CancellationToken, Task<T>>? plain, Func<TState, LoadContext<T>, CancellationToken, Task<T>>? contextual)
    {
        public bool IsNull => plain is null && contextual is null;

        public bool WantsContext => contextual is not null;

        public Task<T> Invoke(TState state, LoadContext<T>? context, CancellationToken cancellationToken) =>
            plain is not null ? plain(state, cancellationToken) : contextual!(state, context!, cancellationToken);
    }

    private sealed class LoaderTimeoutException(bool hard) : Exception
    {
        public bool Hard { get; } = hard;
    }
}
