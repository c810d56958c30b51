using System.Diagnostics;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Model;

/// <summary>
/// Runs one generated program against real caches: one or two nodes (<see cref="CoreNode"/> by default) over the shared
/// model L2 and an in-memory backplane, on one fake clock. Steps run in order on the calling thread; a call starts a
/// caller and does not wait for it, so callers overlap. After each step the runner waits until the run is quiet (no
/// progress, no queued work) unless the step races the next. At the end it releases everything, advances the clock
/// past every timeout, waits (with a hang guard) for every call, and reads every key once more on every node.
/// </summary>
internal sealed class ModelRunner : IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(10);
    private static int s_idleWorkers = IdleBaseline();

    private readonly ModelProgram _program;
    private readonly ModelWorld _world;
    private readonly ModelLoaders _loaders;
    private readonly ModelDistributedCache? _l2;
    private readonly InMemoryBackplane? _backplane;
    private readonly IModelNode[] _nodes;
    private readonly List<(OpRecord Op, Task Task)> _calls = [];
    private int _callers;
    private bool _disposed;

    public ModelRunner(ModelProgram program, ModelNodeFactory? nodes = null)
    {
        _program = program;
        ModelConfig config = program.Config;
        _world = new ModelWorld(config, new FakeTimeProvider());
        _loaders = new ModelLoaders(_world);
        _l2 = config.HasL2 ? new ModelDistributedCache(_world) : null;
        _backplane = config.NodeCount == 2 ? new InMemoryBackplane() : null;
        _nodes = (nodes ?? CoreNode.Create)(config, _world.Time, _l2, _backplane);
    }

    /// <summary>Runs the program and returns its history. <paramref name="collectUnobserved"/> forces the garbage collections that surface unobserved task exceptions.</summary>
    public ModelWorld Run(bool collectUnobserved)
    {
        for (int i = 0; i < _program.Steps.Length; i++)
        {
            Step step = _program.Steps[i];
            bool clockNext = i + 1 < _program.Steps.Length && _program.Steps[i + 1] is AdvanceStep;
            Execute(step, i + 1);
            if (!step.Race || clockNext)
            {
                WaitForQuiet(); // the clock never moves while work of an earlier step may still be on its way
            }
        }

        Drain();
        Audit();
        DisposeNodes();
        if (collectUnobserved)
        {
            foreach (string exception in UnobservedExceptions.Collect())
            {
                _world.UnobservedExceptions.Enqueue(exception);
            }
        }

        return _world;
    }

    public void Dispose() => DisposeNodes();

    private void DisposeNodes()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (IModelNode node in _nodes)
        {
            node.Dispose();
        }
    }

    private void Execute(Step step, int index)
    {
        ModelConfig config = _program.Config;
        switch (step)
        {
            case GetStep get:
                int getKey = config.KeyOf(get.Key);
                Start(OpKind.Get, config.NodeOf(get.Node), [getKey], index, op => GetAsync(op, getKey, get.Loader));
                break;
            case GetManyStep many:
                Start(OpKind.GetMany, config.NodeOf(many.Node), config.BatchKeys(many.KeyMask), index, op => GetManyAsync(op, many.Loader));
                break;
            case TryGetStep tryGet:
                Start(OpKind.TryGet, config.NodeOf(tryGet.Node), [config.KeyOf(tryGet.Key)], index, TryGetAsync);
                break;
            case WriteStep write:
                Start(write.Kind == WriteKind.Set ? OpKind.Set : OpKind.Remove, config.NodeOf(write.Node), [config.KeyOf(write.Key)], index, WriteAsync);
                break;
            case InvalidateStep invalidate:
                int[] tagged = Enumerable.Range(0, config.Keys.Length).Where(k => config.Keys[k].Carries(invalidate.Tag)).ToArray();
                Start(OpKind.RemoveByTag, config.NodeOf(invalidate.Node), tagged, index, WriteAsync, invalidate.TagText);
                break;
            case ReleaseLoaderStep release:
                _loaders.Release(release.Pick, release.Fail);
                break;
            case ReleaseL2Step releaseL2:
                _l2?.Release(releaseL2.Pick);
                break;
            case L2ModeStep mode:
                _l2?.Mode = mode.Mode;
                break;
            case AdvanceStep advance:
                // One second at a time, letting work settle in between: a timer armed after an earlier one fired (a
                // second L2 call after the first timed out) then fires when it is due, not at the end of a long jump.
                for (int second = 0; second < advance.Seconds; second++)
                {
                    if (second > 0)
                    {
                        WaitForQuiet();
                    }

                    _world.Time.Advance(TimeSpan.FromSeconds(1));
                }

                break;
        }
    }

    private OpRecord Start(OpKind kind, int node, int[] keys, int step, Func<OpRecord, Task> body, string? tag = null)
    {
        var op = new OpRecord { Id = ++_callers, Node = node, Kind = kind, Keys = keys, Step = step, Tag = tag };
        _world.Ops.Enqueue(op);
        _calls.Add((op, CallAsync(op, body)));
        return op;
    }

    /// <summary>One caller: its own flow (the async locals it sets never leak to the runner), invocation and return recorded around the call.</summary>
    private async Task CallAsync(OpRecord op, Func<OpRecord, Task> body)
    {
        ModelWorld.CurrentOp.Value = op;
        _backplane?.Sender.Value = _nodes[op.Node].Sink; // a real backplane skips the sender's own messages
        op.InvokedClock = _world.Now;
        op.InvokedAt = _world.Next();
        try
        {
            await body(op);
        }
#pragma warning disable CA1031 // Every outcome is recorded; the checks decide which are allowed.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            op.Error = ex;
        }

        op.ReturnedClock = _world.Now;
        op.ReturnedAt = _world.Next();
    }

    private async Task GetAsync(OpRecord op, int key, LoaderMode mode)
    {
        CacheEntryOptions options = _program.Config.Keys[key].ToOptions();
        op.Values[key] = await _nodes[op.Node].Cache.GetOrLoadAsync(ModelConfig.KeyName(key), _loaders.Single(op.Node, key, mode), options);
    }

    private async Task GetManyAsync(OpRecord op, LoaderMode mode)
    {
        CacheEntryOptions options = _program.Config.Keys[op.Keys[0]].ToOptions();
        IReadOnlyDictionary<string, long> found = await _nodes[op.Node].Cache.GetOrLoadManyAsync(op.Keys.Select(ModelConfig.KeyName), _loaders.Batch(op.Node, mode), options);
        foreach (int key in op.Keys)
        {
            if (found.TryGetValue(ModelConfig.KeyName(key), out long stamp))
            {
                op.Values[key] = stamp;
            }
        }
    }

    private async Task TryGetAsync(OpRecord op)
    {
        CacheLookup<long> lookup = await _nodes[op.Node].Cache.TryGetAsync<long>(ModelConfig.KeyName(op.Keys[0]));
        op.Lookup = lookup.Status;
        if (lookup.Found)
        {
            op.Values[op.Keys[0]] = lookup.Value;
        }
    }

    /// <summary>A write: the database first (each key's row gets a new version), then the cache is told.</summary>
    private async Task WriteAsync(OpRecord op)
    {
        foreach (int key in op.Keys)
        {
            op.Written[key] = _world.WriteRow(key);
        }

        ICoalescingCache node = _nodes[op.Node].Cache;
        switch (op.Kind)
        {
            case OpKind.Set:
                int key = op.Keys[0];
                long stamp = _world.Produce(key, op.Written[key], fromSet: true, op.Id, op.Node);
                await node.SetAsync(ModelConfig.KeyName(key), stamp, _program.Config.Keys[key].ToOptions());
                break;
            case OpKind.Remove:
                await node.RemoveAsync(ModelConfig.KeyName(op.Keys[0]));
                break;
            default:
                await node.RemoveByTagAsync(op.Tag!);
                break;
        }
    }

    /// <summary>Lets everything finish: L2 answers normally, every loader and held answer is released, the clock moves past every timeout.</summary>
    private void Drain()
    {
        _l2?.Mode = L2Mode.Normal;
        for (int round = 0; round < 10; round++)
        {
            _loaders.ReleaseAll();
            _l2?.ReleaseAll();
            WaitForQuiet();
            if (_calls.TrueForAll(c => c.Task.IsCompleted) && Array.TrueForAll(_nodes, n => n.BackgroundCount == 0) && _loaders.Waiting == 0)
            {
                break;
            }

            _world.Time.Advance(TimeSpan.FromSeconds(1));
            WaitForQuiet();
        }

        WaitGuarded(_calls.Select(c => c.Task));
        long deadline = Stopwatch.GetTimestamp() + (long)(HangGuard.TotalSeconds * Stopwatch.Frequency);
        while (!Array.TrueForAll(_nodes, n => n.BackgroundCount == 0) && Stopwatch.GetTimestamp() < deadline)
        {
            Thread.Sleep(1); // a hang guard: the run's outcome is what the history says, not this wait
        }

        _world.BackgroundLeft = _nodes.Select(n => n.BackgroundCount).ToArray();
    }

    /// <summary>Reads every key on every node once more, after everything has settled: any superseded value still cached shows here.</summary>
    private void Audit()
    {
        if (!_calls.TrueForAll(c => c.Task.IsCompleted))
        {
            return; // a call hung: the history already fails; more calls could only hang as well
        }

        for (int n = 0; n < _nodes.Length; n++)
        {
            for (int key = 0; key < _program.Config.Keys.Length; key++)
            {
                int auditKey = key;
                Start(OpKind.AuditTryGet, n, [key], 0, TryGetAsync);
                WaitGuarded([_calls[^1].Task]);
                Start(OpKind.AuditGet, n, [key], 0, op => GetAsync(op, auditKey, LoaderMode.Immediate));
                WaitGuarded([_calls[^1].Task]);
            }
        }

        WaitForQuiet();
    }

    private static void WaitGuarded(IEnumerable<Task> tasks)
    {
        try
        {
            Task.WaitAll(tasks.ToArray(), HangGuard);
        }
        catch (AggregateException)
        {
            // Calls record their own outcomes; a faulted wrapper cannot happen, but never let the guard decide anything.
        }
    }

    /// <summary>
    /// Waits until nothing moves: no new event in the history, no work item queued, none running (no more busy pool
    /// workers than when idle), across a few checks. Best effort by design (it shapes interleavings, never a verdict: the
    /// checks read the recorded order); bounded by a short guard.
    /// </summary>
    private void WaitForQuiet()
    {
        long deadline = Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 5);
        long progress = -1;
        long completed = -1;
        int quiet = 0;
        while (quiet < 4)
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                s_idleWorkers = IdleBaseline(); // the host may have started a long-running item of its own: measure again
                return;
            }

            Thread.SpinWait(64);
            Thread.Yield();
            long nowProgress = _world.Progress;
            long nowCompleted = ThreadPool.CompletedWorkItemCount;
            bool idle = ThreadPool.PendingWorkItemCount == 0 && BusyWorkers() <= s_idleWorkers;
            quiet = idle && nowProgress == progress && nowCompleted == completed ? quiet + 1 : 0;
            progress = nowProgress;
            completed = nowCompleted;
        }
    }

    /// <summary>Pool workers busy when nothing of the run's is: the test host keeps one or more long-running items.</summary>
    private static int IdleBaseline()
    {
        int fewest = int.MaxValue;
        for (int i = 0; i < 10; i++)
        {
            fewest = Math.Min(fewest, BusyWorkers());
            Thread.Sleep(1);
        }

        return fewest;
    }

    private static int BusyWorkers()
    {
        ThreadPool.GetMaxThreads(out int max, out _);
        ThreadPool.GetAvailableThreads(out int available, out _);
        return max - available;
    }
}
