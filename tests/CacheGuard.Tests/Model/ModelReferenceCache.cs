using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Model;

/// <summary>
/// A cache that is correct by being trivial, for the harness's self-tests: it never caches, it only coalesces loads
/// (one flight per key), every write forgets the flights of its keys on every node, and a hard timeout is honoured
/// (the load goes on in the background, or is cancelled). Every property must hold for it; its deliberately broken
/// variants must be caught. Not a model of CacheGuard: a check that the harness asks nothing impossible.
/// </summary>
internal sealed class ModelReferenceCache(TimeProvider time, bool backgroundCompletion, List<ModelReferenceCache> cluster, ModelReferenceCache.Flaw flaw) : ICoalescingCache, IModelNode
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Flight> _flights = new(StringComparer.Ordinal); // guarded by _gate
    private int _running;

    /// <summary>A deliberate bug, to show the harness catches it.</summary>
    public enum Flaw
    {
        None,
        WritesDoNotForgetLoads,
        IgnoresHardTimeouts,
    }

    public ICoalescingCache Cache => this;

    public int BackgroundCount => Volatile.Read(ref _running);

    public ICacheInvalidationSink? Sink => null;

    public static ModelNodeFactory Nodes(Flaw flaw = Flaw.None) => (config, time, _, _) =>
    {
        var cluster = new List<ModelReferenceCache>();
        for (int n = 0; n < config.NodeCount; n++)
        {
            cluster.Add(new ModelReferenceCache(time, config.BackgroundCompletion, cluster, flaw));
        }

        return [.. cluster];
    };

    public void Dispose()
    {
    }

    public ValueTask<T> GetOrLoadAsync<T>(string key, Func<CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        new(WaitAsync<T>(Join(key, options, loader, static (load, ct) => load(ct)), options));

    public ValueTask<T> GetOrLoadAsync<TState, T>(string key, TState state, Func<TState, CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        new(WaitAsync<T>(Join(key, options, (state, loader), static (s, ct) => s.loader(s.state, ct)), options));

    public ValueTask<T> GetOrLoadAsync<TState, T>(string key, TState state, Func<TState, LoadContext<T>, CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("The harness does not use LoadContext loaders.");

    public ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<T>(IEnumerable<string> keys, Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        GetOrLoadManyAsync(keys, loader, static (load, missing, ct) => load(missing, ct), options, cancellationToken);

    public async ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<TState, T>(IEnumerable<string> keys, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default)
    {
        var flights = new Dictionary<string, Flight>(StringComparer.Ordinal);
        var led = new List<(string Key, Flight Flight)>();
        using (_gate.EnterScope())
        {
            foreach (string key in keys.Distinct(StringComparer.Ordinal))
            {
                if (!_flights.TryGetValue(key, out Flight? flight))
                {
                    _flights[key] = flight = new Flight(options, time.GetTimestamp());
                    led.Add((key, flight));
                }

                flights[key] = flight;
            }
        }

        if (led.Count > 0)
        {
            var cancel = new CancellationTokenSource();
            foreach ((_, Flight flight) in led)
            {
                flight.Cancel = cancel;
            }

            _ = RunAsync(led, async ct =>
            {
                IReadOnlyDictionary<string, T> found = await loader(state, [.. led.Select(l => l.Key)], ct);
                return led.Select(l => (object?)found[l.Key]).ToArray();
            }, cancel.Token);
        }

        var results = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach ((string key, Flight flight) in flights)
        {
            results[key] = await WaitAsync<T>(flight, options);
        }

        return results;
    }

    public ValueTask SetAsync<T>(string key, T value, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) => Write(f => f.Key == key);

    public ValueTask RemoveAsync(string key, CancellationToken cancellationToken = default) => Write(f => f.Key == key);

    public ValueTask RemoveByTagAsync(string tag, CancellationToken cancellationToken = default) =>
        Write(f => tag == "*" || f.Value.Options?.Tags?.Contains(tag) == true);

    public ValueTask<CacheLookup<T>> TryGetAsync<T>(string key, CancellationToken cancellationToken = default) => default; // never caches: always a miss

    private ValueTask Write(Func<KeyValuePair<string, Flight>, bool> affected)
    {
        if (flaw != Flaw.WritesDoNotForgetLoads)
        {
            foreach (ModelReferenceCache node in cluster)
            {
                using (node._gate.EnterScope())
                {
                    foreach (KeyValuePair<string, Flight> flight in node._flights.Where(affected).ToList())
                    {
                        node._flights.Remove(flight.Key);
                    }
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    private Flight Join<TState, T>(string key, CacheEntryOptions? options, TState state, Func<TState, CancellationToken, Task<T>> load)
    {
        Flight? flight;
        using (_gate.EnterScope())
        {
            if (_flights.TryGetValue(key, out flight))
            {
                return flight;
            }

            _flights[key] = flight = new Flight(options, time.GetTimestamp()) { Cancel = new CancellationTokenSource() };
        }

        _ = RunAsync([(key, flight)], async ct => new object?[] { await load(state, ct) }, flight.Cancel.Token);
        return flight;
    }

    /// <summary>Runs one load for the flights it leads and completes them; a failure is observed here, whoever waits.</summary>
    private async Task RunAsync(List<(string Key, Flight Flight)> led, Func<CancellationToken, Task<object?[]>> load, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _running);
        try
        {
            object?[] values = await load(cancellationToken);
            for (int i = 0; i < led.Count; i++)
            {
                Finish(led[i].Key, led[i].Flight);
                led[i].Flight.Result.TrySetResult(values[i]);
            }
        }
#pragma warning disable CA1031 // The load's failure goes to its waiters.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            foreach ((string key, Flight flight) in led)
            {
                Finish(key, flight);
                flight.Result.TrySetException(ex);
                _ = flight.Result.Task.Exception; // observed, even if every waiter timed out
            }
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    private void Finish(string key, Flight flight)
    {
        using (_gate.EnterScope())
        {
            if (_flights.TryGetValue(key, out Flight? current) && current == flight)
            {
                _flights.Remove(key);
            }
        }
    }

    private async Task<T> WaitAsync<T>(Flight flight, CacheEntryOptions? options)
    {
        Task<object?> result = flight.Result.Task;
        if (options?.LoaderHardTimeout is not { } hard || flaw == Flaw.IgnoresHardTimeouts)
        {
            return (T)(await result)!;
        }

        TimeSpan left = hard - time.GetElapsedTime(flight.Started);
        try
        {
            return (T)(await (left > TimeSpan.Zero ? result.WaitAsync(left, time) : result.IsCompleted ? result : Task.FromException<object?>(new TimeoutException())))!;
        }
        catch (TimeoutException) when (!result.IsCompleted)
        {
            if (!backgroundCompletion)
            {
                flight.TimedOut = true;
                await flight.Cancel!.CancelAsync();
            }

            throw new TimeoutException("The load did not complete within its hard timeout.");
        }
        catch (OperationCanceledException) when (flight.TimedOut)
        {
            throw new TimeoutException("The load was cancelled at its hard timeout.");
        }
    }

    private sealed class Flight(CacheEntryOptions? options, long started)
    {
        public CacheEntryOptions? Options { get; } = options;

        public long Started { get; } = started;

        public CancellationTokenSource? Cancel { get; set; }

        public volatile bool TimedOut;

        public TaskCompletionSource<object?> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
