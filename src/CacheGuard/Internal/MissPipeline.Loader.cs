using System.Diagnostics;

namespace CacheGuard.Internal;

/// <summary>
/// The lock and loader stages: the loaded value is published, then the flight completes; a failed or timed-out loader
/// ends the flight with its error or a stale stand-in (<c>.Waiting.cs</c>: what each caller gets and when).
/// </summary>
internal sealed partial class MissPipeline
{
    /// <summary>
    /// 3 and 4: the distributed lock when it is on, then the loader. Never throws: every outcome ends in the flight. Without
    /// the lock, a flight whose loader stage opens at once and whose loader completes synchronously runs no state machine.
    /// </summary>
    private Task LockAndLoadAsync<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheItem<T>? refreshOf)
    {
        if (_lock.Enabled)
        {
            return LockThenLoadAsync(flight, state, loader, options, refreshOf);
        }

        try
        {
            ValueTask<LoaderGate> gate = EnterLoaderAsync(flight);
            return gate.IsCompletedSuccessfully ? PastGate(gate.Result, flight, state, loader, options) : PastGateAsync(gate, flight, state, loader, options);
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            flight.Fail(ex);
            return Task.CompletedTask;
        }
    }

    /// <summary>3 and 4 with the distributed lock: it is released only once the result is stored.</summary>
    private async Task LockThenLoadAsync<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheItem<T>? refreshOf)
    {
        string key = flight.Key;
        IAsyncDisposable? lease = null;
        try
        {
            // One node at a time across the fleet; a refresh too (its callers are served the current value meanwhile),
            // and for it only a value newer than the one it refreshes is an answer.
            LockOutcome<T> outcome = await _lock.AcquireOrAwaitAsync<T>(key, refreshOf?.CreatedTicks ?? long.MinValue).ConfigureAwait(false);
            if (outcome.Found is { } fromOwner)
            {
                CompleteFromL2(flight, fromOwner, options, _settings.Resolve(options), options?.Flags ?? CacheEntryFlags.None);
                return;
            }

            lease = outcome.Lease;

            // A flight replaced meanwhile lets go of its lock before it takes the current flight's result: that flight
            // may be waiting for the lock.
            LoaderGate gate = await EnterLoaderAsync(flight).ConfigureAwait(false);
            if (gate == LoaderGate.Replaced && lease is not null)
            {
                await _lock.ReleaseAsync(lease, key).ConfigureAwait(false);
                lease = null;
            }

            await PastGate(gate, flight, state, loader, options).ConfigureAwait(false);
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

    /// <summary>What a flight does once it passed the loader stage's gate: load, follow the flight that replaced it, or nothing (abandoned). Never throws.</summary>
    private Task PastGate<TState, T>(LoaderGate gate, Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options) => gate switch
    {
        LoaderGate.Entered => LoadAsync(flight, state, loader, options),
        LoaderGate.Replaced => FollowCurrentAsync(flight, state, loader, options),
        _ => Task.CompletedTask,
    };

    private async Task PastGateAsync<TState, T>(ValueTask<LoaderGate> gate, Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options)
    {
        LoaderGate passed;
        try
        {
            passed = await gate.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            flight.Fail(ex);
            return;
        }

        await PastGate(passed, flight, state, loader, options).ConfigureAwait(false);
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

    /// <summary>
    /// Runs the loader (the flight has entered the loader stage), publishes its result, completes the flight, and frees the
    /// key's loader slot, whatever happens; never throws. A loader that completes synchronously is finished here, without
    /// a state machine; one that is pending (or failed) is awaited by <see cref="AwaitLoaderAsync"/>.
    /// </summary>
    private Task LoadAsync<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options)
    {
        Policy policy = _settings.Resolve(options);
        LoaderRun<T> run;
        try
        {
            run = StartLoader(flight, state, loader, options, policy);
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return LoaderFailed(flight, ex);
        }

        if (run.Loading.IsCompletedSuccessfully)
        {
            run.Abandon?.Dispose();
            return FinishLoad(flight, run, run.Loading.Result, options, policy);
        }

        return AwaitLoaderAsync(flight, run, options, policy);
    }

    /// <summary>Calls the loader; a synchronous throw becomes its failed task (handled like an asynchronous failure).</summary>
    private LoaderRun<T> StartLoader<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, in Policy policy)
    {
        string key = flight.Key;
        CacheItem<T>? stale = flight.Stale;

        // Without background completion, a hard timeout cancels the loader, through a token of its own.
        CancellationTokenSource? abandon = policy.HardTimeout is not null && !_settings.AllowBackgroundCompletion
            ? CancellationTokenSource.CreateLinkedTokenSource(flight.WorkToken)
            : null;
        LoadContext<T>? context = loader.WantsContext
            ? new LoadContext<T>(key, stale is not null, stale is null ? default : stale.Value, stale is null ? null : new DateTimeOffset(stale.CreatedTicks, TimeSpan.Zero), options, _settings.KeysInTelemetry)
            : null;

        // Timed when someone reads the duration: XFetch (here, or on another node through L2) or a duration listener.
        bool timed = _l2 is not null || policy.Beta > 0 || _metrics.LoadDuration.Enabled;
        long started = timed ? _settings.Time.GetTimestamp() : 0;
        Activity? activity = CacheTelemetry.Start(CacheTelemetry.LoadActivity, _settings.Name, key, _settings.KeysInTelemetry);
        Task<T> loading;
        try
        {
            loading = loader.Invoke(state, context, abandon?.Token ?? flight.WorkToken)
                ?? throw new InvalidOperationException($"The loader for {_settings.KeyPhrase(key)} returned a null Task.");
        }
#pragma warning disable CA1031 // A synchronous throw is the loader's outcome, handled like an asynchronous one.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            loading = Task.FromException<T>(ex);
        }

        return new LoaderRun<T>(loading, context, abandon, activity, timed ? started : null);
    }

    /// <summary>Waits for a loader that did not complete synchronously, within the hard timeout when it cancels the loader; then as <see cref="FinishLoad"/>.</summary>
    private async Task AwaitLoaderAsync<T>(Flight<string, T> flight, LoaderRun<T> run, CacheEntryOptions? options, Policy policy)
    {
        string key = flight.Key;
        CacheEntryFlags flags = options?.Flags ?? CacheEntryFlags.None;
        Task<T> loading = run.Loading;
        CancellationTokenSource? abandon = run.Abandon;
        bool finishing = false; // whether FinishLoad took over freeing the loader slot
        try
        {
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
                run.Activity?.Dispose();
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

                CacheTelemetry.Fail(run.Activity, ex.GetType().FullName!, ex);
                run.Activity?.Dispose();
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

            finishing = true;
            await FinishLoad(flight, run, value, options, policy).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            flight.Fail(ex); // a stale stand-in failed to land: no outcome reached the flight yet
        }
        finally
        {
            if (!loading.IsCompleted)
            {
                // The flight already answered (hard timeout without background completion), but the loader still runs:
                // it keeps the key's loader slot until it ends, so no second loader starts beside it.
                await AwaitQuietly(loading).ConfigureAwait(false);
            }

            if (!finishing)
            {
                FlightTable<string>.ExitLoader(flight);
            }

            abandon?.Dispose();
        }
    }

    /// <summary>
    /// The loader returned <paramref name="value"/>: stores it (L2 unless disabled, then L1, each only if it may still land),
    /// completes the flight, and frees the key's loader slot; never throws. Without an L2 write all of it is synchronous,
    /// and the slot is freed with the flight's completion, in one step.
    /// </summary>
    private Task FinishLoad<T>(Flight<string, T> flight, in LoaderRun<T> run, T value, CacheEntryOptions? options, in Policy policy)
    {
        CacheEntryFlags flags = options?.Flags ?? CacheEntryFlags.None;
        try
        {
            run.Activity?.Dispose();
            TimeSpan took = run.Started is { } started ? _settings.Time.GetElapsedTime(started) : TimeSpan.Zero;
            _metrics.Load(run.Started is null ? null : took);
            LoadContext<T>? context = run.Context;
            if (_l2 is not null && (flags & CacheEntryFlags.DisableDistributedCacheWrite) == 0)
            {
                // Before a store to L2 (which may be slow) the key's loader slot is freed at once: a successor exists only
                // if this flight was superseded, and then the publish step keeps its value out anyway.
                FlightTable<string>.ExitLoader(flight);
                return context?.CachingDisabled == true ? Completed(flight, value) : StoreThenCompleteAsync(flight, value, context, options, policy, took);
            }

            if (context?.CachingDisabled != true)
            {
                (Lifetimes lifetimes, IReadOnlyList<string>? tags) = LifetimesOf(context, options);
                long now = _settings.NowTicks;
                ValueTask stored = _publisher.PublishLoadedAsync(flight.Key, flight.Ticket, Loaded(flight.Ticket, value, lifetimes, tags, took, now), policy, lifetimes, flags, now);
                Debug.Assert(stored.IsCompletedSuccessfully, "Without an L2 write, publishing is synchronous.");
            }

            flight.CompleteLoaded(value);
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return LoaderFailed(flight, ex);
        }

        return Task.CompletedTask;

        static Task Completed(Flight<string, T> flight, T value)
        {
            flight.Complete(value);
            return Task.CompletedTask;
        }
    }

    /// <summary>The loader stage failed before the flight had an outcome: frees the key's loader slot, then fails the flight.</summary>
    private static Task LoaderFailed<T>(Flight<string, T> flight, Exception error)
    {
        FlightTable<string>.ExitLoader(flight);
        flight.Fail(error);
        return Task.CompletedTask;
    }

    /// <summary>Stores a loaded value in L2 then L1 (the loader slot is already free), then completes the flight; never throws.</summary>
    private async Task StoreThenCompleteAsync<T>(Flight<string, T> flight, T value, LoadContext<T>? context, CacheEntryOptions? options, Policy policy, TimeSpan took)
    {
        try
        {
            (Lifetimes lifetimes, IReadOnlyList<string>? tags) = LifetimesOf(context, options);
            long now = _settings.NowTicks;
            await _publisher.PublishLoadedAsync(flight.Key, flight.Ticket, Loaded(flight.Ticket, value, lifetimes, tags, took, now), policy, lifetimes, options?.Flags ?? CacheEntryFlags.None, now).ConfigureAwait(false);
            flight.Complete(value);
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            flight.Fail(ex);
        }
    }

    /// <summary>A loaded entry's jittered lifetimes and tags: the loader's, through its context, or the call's options.</summary>
    private (Lifetimes Lifetimes, IReadOnlyList<string>? Tags) LifetimesOf<T>(LoadContext<T>? context, CacheEntryOptions? options) => context is null
        ? (_settings.JitteredLifetimes(options?.Expiration, options?.LocalExpiration, options?.JitterRatio), options?.Tags)
        : (_settings.JitteredLifetimes(context.Expiration, context.LocalExpiration, options?.JitterRatio), context.Tags);

    private enum LoaderGate
    {
        Entered,
        Replaced,
        Abandoned,
    }

    /// <summary>A started loader: its task, and what finishing it needs.</summary>
    /// <param name="Loading">The loader's task.</param>
    /// <param name="Context">The context it was given, if it asked for one.</param>
    /// <param name="Abandon">The source of its token when a hard timeout cancels it (no background completion).</param>
    /// <param name="Activity">The load's trace activity, if anyone listens.</param>
    /// <param name="Started">When it started (a timestamp), if someone reads the load's duration.</param>
    private readonly record struct LoaderRun<T>(Task<T> Loading, LoadContext<T>? Context, CancellationTokenSource? Abandon, Activity? Activity, long? Started);

    /// <summary>What a loaded value is stored as: created when its work started (so a tag invalidated meanwhile wins).</summary>
    private static L1Entry<T> Loaded<T>(in Ticket ticket, T value, in Lifetimes lifetimes, IReadOnlyList<string>? tags, TimeSpan took, long now) =>
        new(value, Math.Min(ticket.StartedTicks, now), now + lifetimes.DistributedFor(value is null).Ticks, tags is { Count: > 0 } ? [.. tags] : null, took.Ticks);
}
