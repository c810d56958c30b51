using Microsoft.Extensions.Logging;

namespace CacheGuard.Internal;

/// <summary>
/// The miss path. One flight per key runs the stages L1 re-check → L2 → distributed lock → loader, and every stage that
/// ends with a value hands it to the <see cref="Publisher"/> (the one step that decides whether it may land) before it
/// completes the flight. Callers wait for the flight, each within its own soft and hard timeouts. This file: entry (and
/// following the current flight), early refresh, the stages before the loader; <c>.L2.cs</c>: the L2 stage;
/// <c>.Loader.cs</c>: the lock and loader stages; <c>.Waiting.cs</c>: callers' waits, fail-safe and timeouts;
/// <c>.Batch.cs</c> and <c>.Lookup.cs</c>: many keys at once, and lookups without a loader.
/// </summary>
internal sealed partial class MissPipeline
{
    private readonly CacheSettings _settings;
    private readonly L1Store _l1;
    private readonly L2Gateway? _l2;
    private readonly TagIndex _tags;
    private readonly KeyVersions _versions;
    private readonly Publisher _publisher;
    private readonly LoadLockLink _lock;
    private readonly HitChecker _hits;
    private readonly BackgroundWork _background;
    private readonly CacheMetrics _metrics;
    private readonly ILogger _logger;

    public MissPipeline(CacheSettings settings, L1Store l1, L2Gateway? l2, TagIndex tags, KeyVersions versions, Publisher publisher, LoadLockLink loadLock, HitChecker hits, BackgroundWork background, CacheMetrics metrics, ILogger logger)
    {
        _settings = settings;
        _l1 = l1;
        _l2 = l2;
        _tags = tags;
        _versions = versions;
        _publisher = publisher;
        _lock = loadLock;
        _hits = hits;
        _background = background;
        _metrics = metrics;
        _logger = logger;
        // A flight whose tags are known is joined while none of them (nor "*") was invalidated since it started: the rule
        // its value is published by. Otherwise any tag invalidation ends joining it, if its value may carry tags.
        Flights = new FlightTable<string>(
            StringComparer.Ordinal,
            f => f.KnownTags is { } known ? versions.IsCurrent(f.Ticket) && tags.Allows(known, f.Ticket.StartedTicks) : versions.IsJoinable(f.Ticket, f.MayBeTagged));
        _lookups = new FlightTable<string>(StringComparer.Ordinal, f => versions.IsJoinable(f.Ticket, mayBeTagged: true));
    }

    /// <summary>Gets the flights of loads (single and batch, early refresh included).</summary>
    public FlightTable<string> Flights { get; }

    /// <summary>The miss path of <c>GetOrLoadAsync</c>: validates, then joins or starts the key's flight.</summary>
    public ValueTask<T> GetOrLoadAsync<TState, T>(string key, TState state, Loader<TState, T> loader, CacheEntryOptions? options, object? found, CancellationToken cancellationToken)
    {
        _settings.ValidateKey(key);
        if (loader.IsNull)
        {
            throw new ArgumentNullException(nameof(loader));
        }

        if (L1Slot.OtherType<T>(found) is { } cachedType)
        {
            throw _settings.TypeMismatch(key, cachedType, typeof(T));
        }

        options?.Validate();
        CacheEntryFlags flags = options?.Flags ?? CacheEntryFlags.None;
        if ((flags & CacheEntryFlags.DisableUnderlyingData) != 0)
        {
            // No loader: a lookup, which must not start a flight that loader-carrying callers could join.
            return ValueOf(LookupAsync<T>(key, flags, cancellationToken));
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        if (_metrics.Misses.Enabled)
        {
            _metrics.Miss();
        }

        Policy policy = _settings.Resolve(options);
        Ticket ticket = _versions.Capture(key, _settings.NowTicks);
        Flight<string, T>? flight = Flights.JoinOrStart<T>(key, ticket, MayBeTagged(options, loader.WantsContext), cancellationToken.CanBeCanceled, out bool started, out Flight<string>? running, KnownTags(options, loader.WantsContext));
        if (flight is null)
        {
            throw _settings.TypeMismatch(key, running!.ValueType, typeof(T));
        }

        if (!started)
        {
            if (_metrics.Coalesced.Enabled)
            {
                _metrics.Joined();
            }

            return WaitAsync(flight, policy, cancellationToken);
        }

        Task run = RunAsync(flight, state, loader, options, found as CacheItem<T>, refreshOf: null);
        if (run.IsCompleted && !flight.Shared)
        {
            // Finished synchronously and nobody joined: its outcome is final and was written on this thread.
            return flight.Error is null ? new ValueTask<T>(flight.Value!) : ValueTask.FromException<T>(flight.Error);
        }

        flight.Run = run;
        return WaitAsync(flight, policy, cancellationToken);

        static async ValueTask<T> ValueOf(ValueTask<CacheLookup<T>> lookup) => (await lookup.ConfigureAwait(false)).Value!;
    }

    /// <summary>Starts one background refresh of a key whose L1 copy is still being served (eager or probabilistic), off the caller's thread.</summary>
    public void StartRefresh<TState, T>(string key, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheItem<T> current)
    {
        if (options is not null && (options.Flags & CacheEntryFlags.DisableUnderlyingData) != 0)
        {
            return; // the caller asked for no data-source call
        }

        Ticket ticket = _versions.Capture(key, _settings.NowTicks);
        Flight<string, T>? flight = Flights.TryStart<T>(key, ticket, MayBeTagged(options, loader.WantsContext), KnownTags(options, loader.WantsContext));
        if (flight is null)
        {
            return; // a load of the key is already running: it is the refresh
        }

        _metrics.EarlyRefresh();
        var work = new RefreshWork<TState, T>(this, flight, state, loader, options, current);
        Task run = Task.Factory.StartNew(static w => ((RefreshWork<TState, T>)w!).RunAsync(), work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, TaskScheduler.Default).Unwrap();
        flight.Run = run;
        TrackInBackground(flight);
    }

    private static bool MayBeTagged(CacheEntryOptions? options, bool wantsContext) => wantsContext || options?.Tags is { Count: > 0 };

    /// <summary>The tags a flight's value will carry, when the call's options fix them (a loader with a context may choose others).</summary>
    private static string[]? KnownTags(CacheEntryOptions? options, bool wantsContext) => !wantsContext && options?.Tags is { Count: > 0 } tags ? [.. tags] : null;

    /// <summary>
    /// Runs a flight to completion: every outcome, value or error, ends in the flight, so this never throws. The stages
    /// before the loader answer from L1, L2 or the lock owner when they can.
    /// </summary>
    /// <remarks>
    /// Split where a flight usually waits: a stage that completes synchronously goes straight on to the next, and a
    /// pending L2 read continues in <see cref="AfterL2ReadAsync"/>, whose state is only what the rest needs. An L2 hit
    /// that waits for the network allocates that small continuation, not the state of every stage.
    /// </remarks>
    private Task RunAsync<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheItem<T>? hint, CacheItem<T>? refreshOf)
    {
        try
        {
            // 1. L1 again: another flight may have filled it since this caller's miss, or its copy may need a tag check.
            CacheEntryFlags flags = options?.Flags ?? CacheEntryFlags.None;
            if (refreshOf is null && (flags & CacheEntryFlags.DisableLocalCacheRead) == 0)
            {
                CacheItem<T>? current = L1Slot.AsItem<T>(_l1.TryGet(flight.Key, out object? inL1) ? inL1 : null) ?? hint;
                if (current is not null)
                {
                    ValueTask<bool> served = ServeFromL1Async(flight, current);
                    if (!served.IsCompletedSuccessfully)
                    {
                        return AfterL1CheckAsync(served, flight, state, loader, options);
                    }

                    if (served.Result)
                    {
                        return Task.CompletedTask;
                    }
                }
            }
            else if (refreshOf is not null)
            {
                flight.OfferStale(refreshOf, refreshOf.State?.StaleUntilTicks ?? refreshOf.LocalExpiresTicks); // served while it is refreshed
            }

            return FromL2Async(flight, state, loader, options, refreshOf);
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            flight.Fail(ex);
            return Task.CompletedTask;
        }
    }

    /// <summary>The L1 re-check had to refresh tags first: finish it, then go on from L2.</summary>
    private async Task AfterL1CheckAsync<TState, T>(ValueTask<bool> served, Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options)
    {
        try
        {
            if (await served.ConfigureAwait(false))
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

        await FromL2Async(flight, state, loader, options, refreshOf: null).ConfigureAwait(false);
    }

    /// <summary>Serves an L1 copy found by the re-check when it is fresh (after a tag check if needed); otherwise keeps it as a stale stand-in when allowed.</summary>
    private async ValueTask<bool> ServeFromL1Async<T>(Flight<string, T> flight, CacheItem<T> current)
    {
        HitDecision decision = _hits.Check(current, allowRefresh: false);
        if (decision == HitDecision.Unsure)
        {
            await _tags.RefreshAsync(current.Tags).ConfigureAwait(false);
            decision = _hits.Check(current, allowRefresh: false);
        }

        if (decision == HitDecision.Serve)
        {
            flight.Complete(current.Value);
            return true;
        }

        if (decision == HitDecision.Expired && _hits.IsUsableStale(current))
        {
            flight.OfferStale(current, current.State!.StaleUntilTicks); // kept past its expiry for exactly this
        }

        return false;
    }

    /// <summary>A flight replaced before its loader started takes the key's current flight's result, starting that flight if none runs; never throws.</summary>
    private async Task FollowCurrentAsync<TState, T>(Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options)
    {
        try
        {
            string key = flight.Key;
            Ticket ticket = _versions.Capture(key, _settings.NowTicks);
            Flight<string, T>? current = Flights.JoinOrStart<T>(key, ticket, flight.MayBeTagged, cancellable: false, out bool started, out Flight<string>? other, flight.KnownTags)
                ?? throw _settings.TypeMismatch(key, other!.ValueType, typeof(T));
            if (started)
            {
                current.Run = RunAsync(current, state, loader, options, hint: null, refreshOf: null);
            }

            flight.Complete(await current.WaitAsync(CancellationToken.None).ConfigureAwait(false));
        }
#pragma warning disable CA1031 // Every outcome belongs to the flight's callers.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            flight.Fail(ex);
        }
    }

    /// <summary>Counts a flight's run as background work, once: its callers stopped waiting and it goes on for the cache's sake.</summary>
    private void TrackInBackground<T>(Flight<string, T> flight)
    {
        if (flight.Run is { } run && flight.MarkBackgrounded())
        {
            _background.Track(run, flight.Key);
        }
    }

    /// <summary>An early refresh, started on the thread pool so no part of the loader runs on the hitting caller's thread.</summary>
    private sealed class RefreshWork<TState, T>(MissPipeline pipeline, Flight<string, T> flight, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CacheItem<T> current)
    {
        public Task RunAsync() => pipeline.RunAsync(flight, state, loader, options, hint: null, refreshOf: current);
    }
}
