namespace CacheGuard.Internal;

/// <summary>The loader stage of a batch: one loader call for every key it may load (one loader per key still holds).</summary>
internal sealed partial class MissPipeline
{
    /// <summary>
    /// Loads the keys that may load now; returns the flights replaced before loading, each with the flight whose result it
    /// takes. The caller completes those (<see cref="FollowAsync"/>) only once it holds no distributed lock: the flights
    /// they follow may be waiting for one.
    /// </summary>
    private async Task<List<(Flight<string, T> Flight, Flight<string, T> Current)>> LoadBatchAsync<TState, T>(List<Flight<string, T>> pending, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options, Policy policy, CacheEntryFlags flags)
    {
        var entered = new List<Flight<string, T>>(pending.Count);
        var followers = new List<(Flight<string, T> Flight, Flight<string, T> Current)>();
        foreach (Flight<string, T> flight in pending)
        {
            Flight<string, T> candidate = flight;
            while (!await FlightTable<string>.EnterLoaderAsync(candidate).ConfigureAwait(false))
            {
                // Replaced before its loader started: take the key's current flight's result, or lead a new one in this call.
                Ticket ticket = _versions.Capture(candidate.Key, _settings.NowTicks);
                Flight<string, T> current = Flights.JoinOrStart<T>(candidate.Key, ticket, candidate.MayBeTagged, cancellable: false, out bool started, out Flight<string>? other)
                    ?? throw _settings.TypeMismatch(candidate.Key, other!.ValueType, typeof(T));
                followers.Add((candidate, current));
                if (!started)
                {
                    candidate = null!;
                    break;
                }

                candidate = current;
            }

            if (candidate is not null)
            {
                entered.Add(candidate);
            }
        }

        try
        {
            if (entered.Count > 0)
            {
                await RunBatchLoaderAsync(entered, state, loader, options, policy, flags).ConfigureAwait(false);
            }
        }
        finally
        {
            foreach (Flight<string, T> flight in entered)
            {
                FlightTable<string>.ExitLoader(flight);
            }
        }

        return followers;
    }

    /// <summary>
    /// Completes each replaced flight with the outcome of the flight it follows. All are followed at once, not one after
    /// another: the flight one entry follows may itself be a replaced flight that a later entry completes (a chain
    /// F → F′ → F″ when the flight started for F was replaced too), and waiting for it first would wait forever.
    /// </summary>
    private static Task FollowAsync<T>(List<(Flight<string, T> Flight, Flight<string, T> Current)> followers)
    {
        if (followers.Count == 0)
        {
            return Task.CompletedTask;
        }

        var follows = new Task[followers.Count];
        for (int i = 0; i < follows.Length; i++)
        {
            follows[i] = FollowOneAsync(followers[i].Flight, followers[i].Current);
        }

        return Task.WhenAll(follows);

        static async Task FollowOneAsync(Flight<string, T> flight, Flight<string, T> current)
        {
            try
            {
                flight.Complete(await current.WaitAsync(CancellationToken.None).ConfigureAwait(false));
            }
#pragma warning disable CA1031 // The followed flight's outcome is this flight's.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                flight.Fail(ex);
            }
        }
    }

    private async Task RunBatchLoaderAsync<TState, T>(List<Flight<string, T>> flights, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options, Policy policy, CacheEntryFlags flags)
    {
        bool cancelAtDeadline = policy.HardTimeout is not null && !_settings.AllowBackgroundCompletion;
        using CancellationTokenSource? abandon = cancelAtDeadline ? new CancellationTokenSource() : null;
        string[] keys = KeysOf(flights);
        long started = _settings.Time.GetTimestamp();
        Task<IReadOnlyDictionary<string, T>> loading;
        try
        {
            loading = loader(state, keys, abandon?.Token ?? CancellationToken.None) ?? throw new InvalidOperationException("The batch loader returned a null Task.");
        }
#pragma warning disable CA1031 // A synchronous throw is the loader's outcome, handled like an asynchronous one below.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            loading = Task.FromException<IReadOnlyDictionary<string, T>>(ex);
        }

        IReadOnlyDictionary<string, T> loaded;
        try
        {
            loaded = (abandon is null || loading.IsCompleted
                ? await loading.ConfigureAwait(false)
                : await loading.WaitAsync(CacheSettings.Armable(policy.HardTimeout!.Value), _settings.Time).ConfigureAwait(false))
                ?? throw new InvalidOperationException("The batch loader returned a null dictionary.");
        }
        catch (TimeoutException) when (abandon is not null && !loading.IsCompleted)
        {
            await abandon.CancelAsync().ConfigureAwait(false);
            _metrics.LoaderTimeout();
            foreach (Flight<string, T> flight in flights)
            {
                flight.MarkTimedOut();
                FailOrServeStale(flight, policy, flags, "hard_timeout", HardTimeout(flight.Key, policy), null);
            }

            await AwaitQuietly(loading).ConfigureAwait(false); // it keeps the keys' loader slots until it ends
            return;
        }
        catch (Exception ex)
        {
            _metrics.LoaderError();
            Log.LoaderFailed(_logger, _settings.Name, "(batch)", ex);
            foreach (Flight<string, T> flight in flights)
            {
                FailOrServeStale(flight, policy, flags, "error", ex, ex);
            }

            return;
        }

        TimeSpan took = _settings.Time.GetElapsedTime(started);
        _metrics.Load(took);
        foreach (Flight<string, T> flight in flights)
        {
            FlightTable<string>.ExitLoader(flight); // the loader has ended: free the keys' loader slots before storing
        }

        // Store what was found, cache absence for what was not, and answer each key's callers as soon as it is stored.
        var stores = new Task[flights.Count];
        for (int i = 0; i < stores.Length; i++)
        {
            Flight<string, T> flight = flights[i];
            T value = loaded.TryGetValue(flight.Key, out T? found) ? found : default!;
            stores[i] = StoreAndCompleteAsync(flight, value, options, policy, flags, took);
        }

        await Task.WhenAll(stores).ConfigureAwait(false);
    }

    private async Task StoreAndCompleteAsync<T>(Flight<string, T> flight, T value, CacheEntryOptions? options, Policy policy, CacheEntryFlags flags, TimeSpan took)
    {
        try
        {
            Lifetimes lifetimes = _settings.JitteredLifetimes(options?.Expiration, options?.LocalExpiration, options?.JitterRatio);
            long now = _settings.NowTicks;
            await _publisher.PublishLoadedAsync(flight.Key, flight.Ticket, Loaded(flight.Ticket, value, lifetimes, options?.Tags, took, now), policy, lifetimes, flags, now).ConfigureAwait(false);
        }
        finally
        {
            flight.Complete(value);
        }
    }

    /// <summary>A key of a failed or timed-out batch: its stale value when fail-safe allows, otherwise the error.</summary>
    private void FailOrServeStale<T>(Flight<string, T> flight, in Policy policy, CacheEntryFlags flags, string reason, Exception error, Exception? cause)
    {
        if (policy.FailSafe && UsableStale(flight) is { } stale)
        {
            ServeStale(flight, stale, policy, flags, reason, cause);
        }
        else
        {
            flight.Fail(error);
        }
    }
}
