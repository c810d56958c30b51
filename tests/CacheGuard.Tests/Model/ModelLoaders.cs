using System.Collections.Concurrent;
using System.Globalization;

namespace CacheGuard.Tests.Model;

/// <summary>The failure a loader throws when the program tells it to: the only loader error a caller may see.</summary>
internal sealed class ModelLoaderException(LoaderRun run)
    : Exception($"{run.Name} for [{string.Join(", ", run.Keys.Select(ModelConfig.KeyName))}] on {ModelConfig.NodeName(run.Node)} failed, as the program told it to.")
{
    public LoaderRun Run { get; } = run;
}

/// <summary>
/// Loaders over the run's database. A loader reads each row's current version when the cache calls it, so a value
/// carries the version the source had then. It counts the loads running per node and key with Interlocked, and
/// records any overlap. Gated loaders wait for a release step; they honour their token, as a real source would.
/// </summary>
internal sealed class ModelLoaders(ModelWorld world)
{
    private readonly Lock _gate = new();
    private readonly List<Pending> _waiting = []; // guarded by _gate: gated loaders not yet released, oldest first
    private readonly Dictionary<(int Node, int Key), List<LoaderRun>> _running = []; // guarded by _gate
    private readonly int[] _counts = new int[2 * world.Config.Keys.Length];
    private int _ids;

    public int Waiting
    {
        get
        {
            lock (_gate)
            {
                return _waiting.Count;
            }
        }
    }

    public Func<CancellationToken, Task<long>> Single(int node, int key, LoaderMode mode) =>
        cancellationToken => Run(node, [key], mode, static (run, stamps) => stamps[run.Keys[0]], cancellationToken);

    public Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, long>>> Batch(int node, LoaderMode mode) =>
        (keys, cancellationToken) => Run<IReadOnlyDictionary<string, long>>(
            node,
            keys.Select(k => int.Parse(k.AsSpan(1), CultureInfo.InvariantCulture)).ToArray(),
            mode,
            static (run, stamps) => stamps.ToDictionary(p => ModelConfig.KeyName(p.Key), p => p.Value),
            cancellationToken);

    /// <summary>Releases one waiting loader (index taken modulo the count). Returns false when none waits.</summary>
    public bool Release(int pick, bool fail)
    {
        Pending? chosen;
        lock (_gate)
        {
            if (_waiting.Count == 0)
            {
                return false;
            }

            chosen = _waiting[pick % _waiting.Count];
            _waiting.Remove(chosen);
        }

        chosen.Gate.TrySetResult(fail); // continuations run here, inline: the release's effects happen within its step
        return true;
    }

    public void ReleaseAll()
    {
        while (Release(0, fail: false))
        {
        }
    }

    private Task<T> Run<T>(int node, int[] keys, LoaderMode mode, Func<LoaderRun, Dictionary<int, long>, T> result, CancellationToken cancellationToken)
    {
        LoaderRun run = Start(node, keys);
        switch (mode)
        {
            case LoaderMode.Immediate:
                End(run, LoaderOutcome.Value);
                return Task.FromResult(result(run, run.Stamps));
            case LoaderMode.Throws:
                End(run, LoaderOutcome.Failed);
                throw new ModelLoaderException(run);
            case LoaderMode.Async:
            case LoaderMode.ThrowsAsync:
                return AfterYieldAsync(run, mode == LoaderMode.ThrowsAsync, result);
            default:
                var pending = new Pending(run, new TaskCompletionSource<bool>());
                lock (_gate)
                {
                    _waiting.Add(pending);
                }

                return GatedAsync(pending, result, cancellationToken);
        }
    }

    private async Task<T> AfterYieldAsync<T>(LoaderRun run, bool fail, Func<LoaderRun, Dictionary<int, long>, T> result)
    {
        await Task.Yield();
        End(run, fail ? LoaderOutcome.Failed : LoaderOutcome.Value);
        return fail ? throw new ModelLoaderException(run) : result(run, run.Stamps);
    }

    private async Task<T> GatedAsync<T>(Pending pending, Func<LoaderRun, Dictionary<int, long>, T> result, CancellationToken cancellationToken)
    {
        bool fail;
        try
        {
            fail = await pending.Gate.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            lock (_gate)
            {
                _waiting.Remove(pending);
            }

            End(pending.Run, LoaderOutcome.Cancelled);
            throw;
        }

        End(pending.Run, fail ? LoaderOutcome.Failed : LoaderOutcome.Value);
        return fail ? throw new ModelLoaderException(pending.Run) : result(pending.Run, pending.Run.Stamps);
    }

    private LoaderRun Start(int node, int[] keys)
    {
        var run = new LoaderRun
        {
            Id = Interlocked.Increment(ref _ids),
            Node = node,
            Keys = keys,
            OpId = ModelWorld.CurrentOp.Value?.Id ?? 0,
            StartedAt = world.Next(),
            StartedClock = world.Now,
        };

        foreach (int key in keys)
        {
            // The source is read when the loader is called: a value is as old as this moment.
            run.Stamps[key] = world.Produce(key, world.ReadRow(key), fromSet: false, run.Id, node);
        }

        lock (_gate)
        {
            foreach (int key in keys)
            {
                if (Interlocked.Increment(ref _counts[Slot(node, key)]) > 1)
                {
                    foreach (LoaderRun other in Running(node, key))
                    {
                        world.Overlaps.Enqueue(new LoaderOverlap(other, run, key));
                    }
                }

                Running(node, key).Add(run);
            }
        }

        world.Loaders.Enqueue(run);
        return run;
    }

    private void End(LoaderRun run, LoaderOutcome outcome)
    {
        // Recorded before the loader's task completes, so nothing can observe the result before its end is in the history.
        run.EndedClock = world.Now;
        run.Outcome = outcome;
        run.EndedAt = world.Next();
        lock (_gate)
        {
            foreach (int key in run.Keys)
            {
                Interlocked.Decrement(ref _counts[Slot(run.Node, key)]);
                Running(run.Node, key).Remove(run);
            }
        }
    }

    private int Slot(int node, int key) => (node * world.Config.Keys.Length) + key;

    private List<LoaderRun> Running(int node, int key)
    {
        if (!_running.TryGetValue((node, key), out List<LoaderRun>? list))
        {
            _running[(node, key)] = list = [];
        }

        return list;
    }

    private sealed record Pending(LoaderRun Run, TaskCompletionSource<bool> Gate);
}

/// <summary>The exceptions <see cref="TaskScheduler.UnobservedTaskException"/> reported, for the run that is checking them.</summary>
internal static class UnobservedExceptions
{
    private static readonly ConcurrentQueue<string> Seen = new();

    static UnobservedExceptions() => TaskScheduler.UnobservedTaskException += (_, e) => Seen.Enqueue(Describe(e.Exception));

    /// <summary>Collects garbage until every finalizer has run, then takes what was reported since the last call.</summary>
    public static List<string> Collect()
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        var taken = new List<string>();
        while (Seen.TryDequeue(out string? one))
        {
            taken.Add(one);
        }

        return taken;
    }

    private static string Describe(AggregateException exception) =>
        string.Join("; ", exception.InnerExceptions.Select(e => $"{e.GetType().Name}: {e.Message}"));
}
