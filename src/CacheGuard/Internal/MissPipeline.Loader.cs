using System.Diagnostics;

namespace CacheGuard.Internal;

/// <summary>
/// The lock and loader stages, and what callers get when the loader is slow or fails: the loaded value (published,
/// then the flight completes), a stale value (fail-safe or a soft timeout), or the loader's exception / a
/// <see cref="TimeoutException"/>.
/// </summary>
internal sealed partial class MissPipeline
{
    /// <summary>3 and 4: the distributed lock when it is on, then the loader; the lock, if held, is released only once the result is stored.</summary>
    private async Task LockAndLoadAsync<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheItem<T>? refreshOf)
    {
        string key = flight.Key;
        Policy policy = _settings.Resolve(options);
        CacheEntryFlags flags = options?.Flags ?? CacheEntryFlags.None;
        IAsyncDisposable? lease = null;
        try
        {
            // 3. One node at a time across the fleet, when the distributed lock is on; a refresh too (its callers are
            // served the current value meanwhile), and for it only a value newer than the one it refreshes is an answer.
            if (_lock.Enabled)
            {
                LockOutcome<T> outcome = await _lock.AcquireOrAwaitAsync<T>(key, refreshOf?.CreatedTicks ?? long.MinValue).ConfigureAwait(false);
                if (outcome.Found is { } fromOwner)
                {
                    CompleteFromL2(flight, fromOwner, options, policy, flags);
                    return;
                }

                lease = outcome.Lease;
            }

            // 4. The loader. A flight replaced meanwhile lets go of its lock before it takes the current flight's result:
            // that flight may be waiting for the lock.
            LoaderGate gate = await EnterLoaderAsync(flight).ConfigureAwait(false);
            if (gate == LoaderGate.Entered)
            {
                await LoadAsync(flight, state, loader, options, policy, flags).ConfigureAwait(false);
            }
            else if (gate == LoaderGate.Replaced)
            {
                if (lease is not null)
                {
                    await _lock.ReleaseAsync(lease, key).ConfigureAwait(false);
                    lease = null;
                }

                await FollowCurrentAsync(flight, state, loader, options, policy).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            flight.Fail(ex);
        }
        finally
        {
            if (lease is not null)
            {
                await _lock.ReleaseAsync(lease, key).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Lets the flight into the loader stage (one loader per key): <see langword="false"/> when every caller left, or when
    /// another flight replaced this one (its callers then take that flight's result: <see cref="FollowCurrentAsync"/>,
    /// called only once this flight holds no distributed lock, which the current flight may be waiting for).
    /// </summary>
    private static ValueTask<LoaderGate> EnterLoaderAsync<T>(Flight<string, T> flight)
    {
        if (flight.WorkToken.IsCancellationRequested)
        {
            flight.Fail(new OperationCanceledException(flight.WorkToken)); // every caller left before the loader stage
            return new ValueTask<LoaderGate>(LoaderGate.Abandoned);
        }

        ValueTask<bool> entering = FlightTable<string>.EnterLoaderAsync(flight);
        return entering.IsCompletedSuccessfully ? new ValueTask<LoaderGate>(Gate(entering.Result)) : AfterWaitAsync(entering);

        static LoaderGate Gate(bool entered) => entered ? LoaderGate.Entered : LoaderGate.Replaced;

        static async ValueTask<LoaderGate> AfterWaitAsync(ValueTask<bool> entering) => Gate(await entering.ConfigureAwait(false));
    }

    /// <summary>Runs the loader (the flight has entered the loader stage), publishes its result, and completes the flight.</summary>
    private async Task LoadAsync<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, Policy policy, CacheEntryFlags flags)
    {

        string key = flight.Key;
        CacheItem<T>? stale = flight.Stale;
        bool cancelAtDeadline = policy.HardTimeout is not null && !_settings.AllowBackgroundCompletion;
        using CancellationTokenSource? abandon = cancelAtDeadline ? CancellationTokenSource.CreateLinkedTokenSource(flight.WorkToken) : null;
        Task<T>? loading = null;
        bool exited = false; // whether the flight's loader slot was freed
        try
        {
            LoadContext<T>? context = loader.WantsContext
                ? new LoadContext<T>(key, stale is not null, stale is null ? default : stale.Value, stale is null ? null : new DateTimeOffset(stale.CreatedTicks, TimeSpan.Zero), options, _settings.KeysInTelemetry)
                : null;
            // Timed when someone reads the duration: XFetch (here, or on another node through L2) or a duration listener.
            bool timed = _l2 is not null || policy.Beta > 0 || _metrics.LoadDuration.Enabled;
            long started = timed ? _settings.Time.GetTimestamp() : 0;
            Activity? activity = CacheTelemetry.Start(CacheTelemetry.LoadActivity, _settings.Name, key, _settings.KeysInTelemetry);
            try
            {
                loading = loader.Invoke(state, context, abandon?.Token ?? flight.WorkToken)
                    ?? throw new InvalidOperationException($"The loader for {_settings.KeyPhrase(key)} returned a null Task.");
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
                value = abandon is null || loading.IsCompleted
                    ? await loading.ConfigureAwait(false)
                    : await loading.WaitAsync(CacheSettings.Armable(policy.HardTimeout!.Value), _settings.Time).ConfigureAwait(false);
            }
            catch (TimeoutException) when (abandon is not null && !loading.IsCompleted)
            {
                // No background completion: the loader is cancelled at the hard timeout and every caller gets the outcome now.
                activity?.Dispose();
                await abandon.CancelAsync().ConfigureAwait(false);
                if (flight.MarkTimedOut())
                {
                    _metrics.LoaderTimeout();
                }

                if (policy.FailSafe && UsableStale(flight) is { } standIn)
                {
                    ServeStale(flight, standIn, policy, flags, "hard_timeout", null);
                }
                else
                {
                    flight.Fail(HardTimeout(key, policy));
                }

                return;
            }
            catch (Exception ex)
            {
                _metrics.LoaderError();
                string logKey = _settings.LogKey(key);
                if (flight.IsBackgrounded)
                {
                    Log.BackgroundLoadFailed(_logger, _settings.Name, logKey, ex);
                }
                else
                {
                    Log.LoaderFailed(_logger, _settings.Name, logKey, ex);
                }

                CacheTelemetry.Fail(activity, ex.GetType().FullName!, ex);
                activity?.Dispose();
                if (policy.FailSafe && UsableStale(flight) is { } standIn)
                {
                    ServeStale(flight, standIn, policy, flags, "error", ex);
                }
                else
                {
                    flight.Fail(ex);
                }

                return;
            }

            activity?.Dispose();
            TimeSpan took = timed ? _settings.Time.GetElapsedTime(started) : TimeSpan.Zero;
            _metrics.Load(timed ? took : null);

            // The loader has ended. Before a store to L2 (which may be slow) the key's loader slot is freed at once (a
            // successor exists only if this flight was superseded, and then the publish step keeps its value out anyway);
            // otherwise the store is synchronous and the slot is freed with the flight's completion, in one step.
            bool storesInL2 = _l2 is not null && (flags & CacheEntryFlags.DisableDistributedCacheWrite) == 0;
            if (storesInL2)
            {
                FlightTable<string>.ExitLoader(flight);
                exited = true;
            }

            if (context?.CachingDisabled != true)
            {
                Lifetimes lifetimes = context is null
                    ? _settings.JitteredLifetimes(options?.Expiration, options?.LocalExpiration, options?.JitterRatio)
                    : _settings.JitteredLifetimes(context.Expiration, context.LocalExpiration, options?.JitterRatio);
                IReadOnlyList<string>? tags = context is null ? options?.Tags : context.Tags;
                long now = _settings.NowTicks;
                await _publisher.PublishLoadedAsync(key, flight.Ticket, Loaded(flight.Ticket, value, lifetimes, tags, took, now), policy, lifetimes, flags, now).ConfigureAwait(false);
            }

            if (exited)
            {
                flight.Complete(value);
            }
            else
            {
                flight.CompleteLoaded(value);
                exited = true;
            }
        }
        finally
        {
            if (loading is { IsCompleted: false })
            {
                // The flight already answered (hard timeout without background completion), but the loader still runs:
                // it keeps the key's loader slot until it ends, so no second loader starts beside it.
                await AwaitQuietly(loading).ConfigureAwait(false);
            }

            if (!exited)
            {
                FlightTable<string>.ExitLoader(flight);
            }
        }
    }

    private enum LoaderGate
    {
        Entered,
        Replaced,
        Abandoned,
    }

    /// <summary>A flight replaced before its loader started takes the key's current flight's result, starting that flight if none runs.</summary>
    private async Task FollowCurrentAsync<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, Policy policy)
    {
        string key = flight.Key;
        Ticket ticket = _versions.Capture(key, _settings.NowTicks);
        Flight<string, T>? current = Flights.JoinOrStart<T>(key, ticket, flight.MayBeTagged, cancellable: false, out bool started, out Flight<string>? other)
            ?? throw _settings.TypeMismatch(key, other!.ValueType, typeof(T));
        if (started)
        {
            current.Run = RunAsync(current, state, loader, options, hint: null, refreshOf: null);
        }

        flight.Complete(await current.WaitAsync(CancellationToken.None).ConfigureAwait(false));
    }

    /// <summary>What a loaded value is stored as: created when its work started (so a tag invalidated meanwhile wins).</summary>
    private static L1Entry<T> Loaded<T>(in Ticket ticket, T value, in Lifetimes lifetimes, IReadOnlyList<string>? tags, TimeSpan took, long now) =>
        new(value, Math.Min(ticket.StartedTicks, now), now + lifetimes.DistributedFor(value is null).Ticks, tags is { Count: > 0 } ? [.. tags] : null, took.Ticks);

    /// <summary>Hands a stale value to the flight's callers and re-arms it in L1 for the throttle, so a failing source is not hammered.</summary>
    private void ServeStale<T>(Flight<string, T> flight, CacheItem<T> stale, in Policy policy, CacheEntryFlags flags, string reason, Exception? error)
    {
        StaleServed(flight.Key, reason, error);
        _publisher.PublishLocal(flight.Key, flight.Ticket, stale, policy, policy.FailSafeThrottle, flags, rearm: true);
        flight.Complete(stale.Value);
    }

    private void StaleServed(string key, string reason, Exception? error)
    {
        _metrics.StaleServed(reason);
        string logKey = _settings.LogKey(key);
        Log.StaleValueServed(_logger, _settings.Name, logKey, reason, error);
    }

    /// <summary>The flight's stand-in, if it is still allowed now: within its window (fail-safe's, or its own freshness) and not invalidated by a tag since.</summary>
    private CacheItem<T>? UsableStale<T>(Flight<string, T> flight) =>
        flight.Stale is { } stale && _settings.NowTicks < flight.StaleUntilTicks && _tags.Allows(stale.Tags, stale.CreatedTicks) ? stale : null;

    private TimeoutException HardTimeout(string key, in Policy policy) =>
        new($"The loader for {_settings.KeyPhrase(key)} did not complete within LoaderHardTimeout ({policy.HardTimeout}).");

    /// <summary>Waits for a flight's outcome within this caller's own soft and hard timeouts (measured from this call).</summary>
    private ValueTask<T> WaitAsync<T>(Flight<string, T> flight, in Policy policy, CancellationToken cancellationToken)
    {
        bool callerHard = policy.HardTimeout is not null && _settings.AllowBackgroundCompletion;
        return policy.SoftTimeout is null && !callerHard
            ? new ValueTask<T>(flight.WaitAsync(cancellationToken))
            : WaitWithTimeoutsAsync(flight, policy, callerHard, cancellationToken);
    }

    private async ValueTask<T> WaitWithTimeoutsAsync<T>(Flight<string, T> flight, Policy policy, bool callerHard, CancellationToken cancellationToken)
    {
        long started = _settings.Time.GetTimestamp();
        Task<T> result = flight.WaitAsync(cancellationToken);
        if (policy.SoftTimeout is { } soft && (policy.HardTimeout is not { } limit || soft < limit) && !result.IsCompleted)
        {
            await CompletesWithinAsync(result, soft).ConfigureAwait(false);
            if (!result.IsCompleted && UsableStale(flight) is { } stale)
            {
                StaleServed(flight.Key, "soft_timeout", null);
                TrackInBackground(flight);
                ObserveAbandoned(result);
                return stale.Value;
            }
        }

        if (callerHard && !result.IsCompleted)
        {
            TimeSpan left = policy.HardTimeout!.Value - _settings.Time.GetElapsedTime(started);
            if (left > TimeSpan.Zero)
            {
                await CompletesWithinAsync(result, left).ConfigureAwait(false);
            }

            if (!result.IsCompleted)
            {
                // This caller stops waiting; the load goes on for the cache's sake, and later callers join it.
                if (flight.MarkTimedOut())
                {
                    _metrics.LoaderTimeout();
                }

                TrackInBackground(flight);
                ObserveAbandoned(result);
                if (policy.FailSafe && UsableStale(flight) is { } stale)
                {
                    StaleServed(flight.Key, "hard_timeout", null);
                    return stale.Value;
                }

                throw HardTimeout(flight.Key, policy);
            }
        }

        return await result.ConfigureAwait(false);
    }

    /// <summary>A caller's wait it stopped awaiting (it got a stale value or its timeout): if the load fails later, that failure is observed here.</summary>
    private static void ObserveAbandoned(Task wait) =>
        wait.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>Waits until <paramref name="task"/> completes or <paramref name="timeout"/> passes on the injected clock; never throws.</summary>
    private Task CompletesWithinAsync(Task task, TimeSpan timeout) => AwaitQuietly(task.WaitAsync(CacheSettings.Armable(timeout), _settings.Time));

    private static async Task AwaitQuietly(Task task)
    {
        await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _ = task.Exception; // observed: a timeout here is an answer, not an error
    }
}
