using System.Runtime.CompilerServices;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class SingleFlightTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    [Test]
    public async Task Do_ReturnsTheValue_NotShared()
    {
        var group = new SingleFlight<string, string>();

        SingleFlightResult<string> result = await group.DoAsync("key", static _ => Task.FromResult("bar"));

        Assert.That(result, Is.EqualTo(new SingleFlightResult<string>("bar", false)));
        Assert.That(group.InFlightCount, Is.Zero);
    }

    [Test]
    public void Do_Error_ReachesTheCaller_AndIsNotRemembered()
    {
        var group = new SingleFlight<string, int>();
        int calls = 0;

        var first = Assert.ThrowsAsync<InvalidOperationException>(() => group.DoAsync("key", _ =>
        {
            calls++;
            return Task.FromException<int>(new InvalidOperationException("some error"));
        }));
        Assert.That(first!.Message, Is.EqualTo("some error"));

        // Not sync.Once: the next call runs the work again.
        var second = group.DoAsync("key", _ => { calls++; return Task.FromResult(7); });
        Assert.That(second.Result.Value, Is.EqualTo(7));
        Assert.That(calls, Is.EqualTo(2));
        Assert.That(group.InFlightCount, Is.Zero);
    }

    [Test]
    public void Do_SynchronousThrow_BecomesTheTaskOutcome()
    {
        var group = new SingleFlight<string, int>();

        Task<SingleFlightResult<int>> task = group.DoAsync("key", static _ => throw new ArgumentException("thrown before any await"));

        Assert.That(task.IsFaulted, Is.True, "DoAsync itself must not throw; the work's exception is the task's outcome.");
        Assert.ThrowsAsync<ArgumentException>(() => task);
        Assert.That(group.InFlightCount, Is.Zero);
    }

    [Test]
    [Repeat(20)]
    public async Task DuplicateSuppression_OneExecution_EveryCallerShares()
    {
        const int callers = 10;
        var group = new SingleFlight<string, string>();
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        int calls = 0;

        var tasks = new Task<SingleFlightResult<string>>[callers];
        for (int i = 0; i < callers; i++)
        {
            tasks[i] = group.DoAsync("key", gate, (g, _) => { Interlocked.Increment(ref calls); return g.Task; });
        }

        Assert.That(group.InFlightCount, Is.EqualTo(1));
        gate.SetResult("bar");
        SingleFlightResult<string>[] results = await Task.WhenAll(tasks).WaitAsync(Guard);

        Assert.That(calls, Is.EqualTo(1));
        Assert.That(results, Has.All.EqualTo(new SingleFlightResult<string>("bar", true)), "Shared is true for every caller, the leader too.");
        Assert.That(group.InFlightCount, Is.Zero);
    }

    [Test]
    [Repeat(10)]
    public async Task Stampede_TenThousandCallersFromManyThreads_OneExecution()
    {
        const int callers = 10_000;
        var group = new SingleFlight<int, int>();
        var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        int calls = 0;
        using var start = new Barrier(2);

        Task<SingleFlightResult<int>>[] Launch(int from, int count)
        {
            start.SignalAndWait();
            var mine = new Task<SingleFlightResult<int>>[count];
            for (int i = 0; i < count; i++)
            {
                mine[i] = group.DoAsync(42, gate, (g, _) => { Interlocked.Increment(ref calls); return g.Task; });
            }

            return mine;
        }

        var a = Task.Run(() => Launch(0, callers / 2));
        var b = Task.Run(() => Launch(callers / 2, callers / 2));
        var launched = (await a).Concat(await b).ToArray();
        gate.SetResult(99);
        var results = await Task.WhenAll(launched).WaitAsync(Guard);

        Assert.That(calls, Is.EqualTo(1));
        Assert.That(results.Select(r => r.Value), Has.All.EqualTo(99));
        Assert.That(results.Select(r => r.Shared), Has.All.True);
        Assert.That(group.InFlightCount, Is.Zero);
    }

    [Test]
    public async Task Exception_ReachesEveryWaiter_WithItsTypeMessageAndStackTrace()
    {
        var group = new SingleFlight<string, int>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = Enumerable.Range(0, 5).Select(_ => group.DoAsync("key", gate, FailAfterGate)).ToArray();

        gate.SetResult();
        foreach (var task in tasks)
        {
            var ex = Assert.ThrowsAsync<KeyNotFoundException>(async () => await task.WaitAsync(Guard));
            Assert.That(ex!.Message, Is.EqualTo("the panic"));
            Assert.That(ex.StackTrace, Does.Contain(nameof(FailAfterGate)), "The original stack trace must survive.");
        }

        Assert.That(group.InFlightCount, Is.Zero);
        var again = await group.DoAsync("key", static _ => Task.FromResult(1));
        Assert.That(again.Value, Is.EqualTo(1), "A failure is not remembered.");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<int> FailAfterGate(TaskCompletionSource gate, CancellationToken cancellationToken)
    {
        await gate.Task;
        throw new KeyNotFoundException("the panic");
    }

    [Test]
    public async Task Forget_LaterCallersStartANewExecution_AndTheOldOneDoesNotRemoveIt()
    {
        var group = new SingleFlight<string, int>();
        var firstGate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondGate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);

        var first = group.DoAsync("key", firstGate, static (g, _) => g.Task);
        Assert.That(group.Forget("key"), Is.True);
        Assert.That(group.Forget("key"), Is.False, "Nothing left to forget.");

        var second = group.DoAsync("key", secondGate, static (g, _) => g.Task);
        Assert.That(group.InFlightCount, Is.EqualTo(1));

        // The forgotten execution completes for its own waiter and must leave the newer one in the map.
        firstGate.SetResult(1);
        Assert.That((await first.WaitAsync(Guard)).Value, Is.EqualTo(1));
        Assert.That(group.InFlightCount, Is.EqualTo(1), "The forgotten flight's completion removed its successor.");

        var third = group.DoAsync("key", static _ => Task.FromResult(3));
        Assert.That(third.IsCompleted, Is.False, "A caller after the forgotten one must join the second execution.");
        secondGate.SetResult(2);
        Assert.That((await second.WaitAsync(Guard)).Value, Is.EqualTo(2));
        Assert.That((await third.WaitAsync(Guard)).Value, Is.EqualTo(2));
        Assert.That(group.InFlightCount, Is.Zero);
    }

    [Test]
    public async Task OneWaiterCancels_OnlyItsWaitEnds_TheWorkGoesOn()
    {
        var group = new SingleFlight<string, int>();
        var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        CancellationToken workToken = default;
        using var leaving = new CancellationTokenSource();
        using var staying = new CancellationTokenSource();

        var leaver = group.DoAsync("key", _ => { workToken = _; return gate.Task; }, leaving.Token);
        var stayer = group.DoAsync("key", static _ => Task.FromResult(-1), staying.Token);
        await leaving.CancelAsync();

        Assert.ThrowsAsync<TaskCanceledException>(async () => await leaver.WaitAsync(Guard));
        Assert.That(workToken.IsCancellationRequested, Is.False, "One waiter remains: the work must not be cancelled.");
        gate.SetResult(5);
        Assert.That((await stayer.WaitAsync(Guard)).Value, Is.EqualTo(5));
    }

    [Test]
    public async Task EveryWaiterCancels_TheWorkIsCancelled_AndTheKeyIsFreed()
    {
        var group = new SingleFlight<string, int>();
        var workCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var a = new CancellationTokenSource();
        using var b = new CancellationTokenSource();

        Task<int> Work(CancellationToken token)
        {
            token.Register(() => workCancelled.TrySetResult());
            return Task.Delay(Timeout.Infinite, token).ContinueWith(_ => 0, TaskScheduler.Default);
        }

        var first = group.DoAsync("key", Work, a.Token);
        var second = group.DoAsync("key", Work, b.Token);
        await a.CancelAsync();
        Assert.That(workCancelled.Task.IsCompleted, Is.False, "One waiter remains.");
        await b.CancelAsync();

        await workCancelled.Task.WaitAsync(Guard);
        Assert.That(group.InFlightCount, Is.Zero);
        Assert.ThrowsAsync<TaskCanceledException>(async () => await first.WaitAsync(Guard));
        Assert.ThrowsAsync<TaskCanceledException>(async () => await second.WaitAsync(Guard));

        var fresh = await group.DoAsync("key", static _ => Task.FromResult(8)).WaitAsync(Guard);
        Assert.That(fresh, Is.EqualTo(new SingleFlightResult<int>(8, false)), "The next call starts fresh.");
    }

    [Test]
    public async Task AWaiterThatCannotCancel_PinsTheWork()
    {
        var group = new SingleFlight<string, int>();
        var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        CancellationToken workToken = default;
        using var cts = new CancellationTokenSource();

        var leader = group.DoAsync("key", t => { workToken = t; return gate.Task; }, cts.Token);
        var pinned = group.DoAsync("key", static _ => Task.FromResult(0));
        await cts.CancelAsync();

        Assert.ThrowsAsync<TaskCanceledException>(async () => await leader.WaitAsync(Guard));
        Assert.That(workToken.IsCancellationRequested, Is.False);
        gate.SetResult(4);
        Assert.That((await pinned.WaitAsync(Guard)).Value, Is.EqualTo(4));
        Assert.That(group.InFlightCount, Is.Zero);
    }

    [Test]
    public async Task DoChan_APerCallerDeadline_DoesNotCancelTheSharedWork()
    {
        var group = new SingleFlight<string, int>();
        var time = new FakeTimeProvider();
        var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        CancellationToken workToken = default;

        Task<SingleFlightResult<int>> channel = group.DoAsync("key", t => { workToken = t; return gate.Task; });
        Task<SingleFlightResult<int>> impatient = channel.WaitAsync(TimeSpan.FromSeconds(1), time);
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.ThrowsAsync<TimeoutException>(async () => await impatient.WaitAsync(Guard));
        Assert.That(workToken.IsCancellationRequested, Is.False);
        gate.SetResult(3);
        Assert.That((await channel.WaitAsync(Guard)).Value, Is.EqualTo(3));
    }

    [Test]
    public void AlreadyCancelledToken_ReturnsCancelled_WithoutRunningTheWork()
    {
        var group = new SingleFlight<string, int>();
        int calls = 0;

        var task = group.DoAsync("key", _ => { calls++; return Task.FromResult(1); }, new CancellationToken(canceled: true));

        Assert.That(task.IsCanceled, Is.True);
        Assert.That(calls, Is.Zero);
        Assert.That(group.InFlightCount, Is.Zero);
    }

    [Test]
    public async Task InFlightCount_ReturnsToZero_AfterSuccessFailureAndCancellation()
    {
        var group = new SingleFlight<int, int>();
        var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var failing = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cts = new CancellationTokenSource();

        var ok = group.DoAsync(1, gate, static (g, _) => g.Task);
        var bad = group.DoAsync(2, failing, static (g, _) => g.Task);
        var abandoned = group.DoAsync(3, static t => Task.Delay(Timeout.Infinite, t).ContinueWith(_ => 0, TaskScheduler.Default), cts.Token);
        Assert.That(group.InFlightCount, Is.EqualTo(3));

        gate.SetResult(1);
        failing.SetException(new InvalidOperationException());
        await cts.CancelAsync();
        await ok;
        Assert.CatchAsync(async () => await bad);
        Assert.CatchAsync(async () => await abandoned);

        Assert.That(group.InFlightCount, Is.Zero);
    }

    [Test]
    public void NullArguments_Throw()
    {
        var group = new SingleFlight<string, int>();

        Assert.Throws<ArgumentNullException>(() => group.DoAsync(null!, static _ => Task.FromResult(1)));
        Assert.Throws<ArgumentNullException>(() => group.DoAsync("key", (Func<CancellationToken, Task<int>>)null!));
        Assert.Throws<ArgumentNullException>(() => group.DoAsync("key", 1, (Func<int, CancellationToken, Task<int>>)null!));
        Assert.Throws<ArgumentNullException>(() => group.Forget(null!));
    }

    [Test]
    public async Task Comparer_IsHonoured()
    {
        var group = new SingleFlight<string, int>(StringComparer.OrdinalIgnoreCase);
        var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);

        var upper = group.DoAsync("KEY", gate, static (g, _) => g.Task);
        var lower = group.DoAsync("key", static _ => Task.FromResult(-1));
        gate.SetResult(1);

        Assert.That((await lower.WaitAsync(Guard)).Value, Is.EqualTo(1));
        Assert.That((await upper.WaitAsync(Guard)).Shared, Is.True);
    }
}
