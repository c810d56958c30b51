using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (b): at most one loader per key runs at any moment. After a hard timeout with background
/// completion on, later callers join the load that is still running (each bounded by its own
/// <see cref="CacheEntryOptions.LoaderHardTimeout"/>, counted from its own call) instead of starting a second loader
/// against the same slow source. After a <c>RemoveAsync</c>, the next load starts only once the superseded one ends.
/// </summary>
public class OneLoaderPerKey_EvenAfterTimeouts
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Hard = TimeSpan.FromSeconds(3);

    private static async Task<(Task<string> First, TaskCompletionSource<string> Gate)> TimeOutAFirstCallerAsync(Internal.DefaultCoalescingCache cache, FakeTimeProvider time, ConcurrencyProbe probe)
    {
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        int armed = time.ArmedTimers;
        var first = cache.GetOrLoadAsync("k", _ => probe.Run(() => gate.Task)).AsTask();
        await TestCaches.Until(() => probe.Calls == 1 && time.ArmedTimers > armed, "the first load runs under its hard timeout");
        time.Advance(Hard);
        await Expect.ThrowsAsync<TimeoutException>(first);
        return (first, gate);
    }

    [Test]
    public async Task AfterAHardTimeout_TheNextCallerJoinsTheLoadStillRunning_NoSecondLoaderStarts()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => o.LoaderHardTimeout = Hard, time: time);
        var probe = new ConcurrencyProbe();
        var (_, gate) = await TimeOutAFirstCallerAsync(cache, time, probe);

        int armed = time.ArmedTimers;
        var second = cache.GetOrLoadAsync("k", _ => probe.Run(() => Task.FromResult("second loader"))).AsTask();
        await TestCaches.Until(() => second.IsCompleted || time.ArmedTimers > armed, "the second caller loads, or waits under its own hard timeout");
        Assert.That(probe.Max, Is.EqualTo(1), "A second loader of the key ran while the timed-out one was still running.");

        gate.SetResult("first loader");
        Assert.That(await second.WaitAsync(Guard), Is.EqualTo("first loader"), "The second caller joined the running load.");
        Assert.That(probe.Calls, Is.EqualTo(1));
    }

    [Test]
    public async Task ACallerThatJoinsAfterAHardTimeout_WaitsNoLongerThanItsOwnHardTimeout()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => o.LoaderHardTimeout = Hard, time: time);
        var probe = new ConcurrencyProbe();
        var (_, gate) = await TimeOutAFirstCallerAsync(cache, time, probe);

        int armed = time.ArmedTimers;
        var second = cache.GetOrLoadAsync("k", _ => probe.Run(() => Task.FromResult("second loader"))).AsTask();
        await TestCaches.Until(() => second.IsCompleted || time.ArmedTimers > armed, "the second caller loads, or waits under its own hard timeout");
        Assert.That(second.IsCompleted, Is.False, "The second caller did not wait for the load still running.");

        time.Advance(Hard - TimeSpan.FromTicks(1));
        Assert.That(second.IsCompleted, Is.False, "The second caller's wait ended before its own hard timeout.");
        time.Advance(TimeSpan.FromTicks(1));
        await Expect.ThrowsAsync<TimeoutException>(second);

        gate.SetResult("first loader");
        await TestCaches.Until(() => cache.BackgroundCount == 0, "the background completion finishes");
        Assert.That(await cache.GetOrLoadAsync("k", _ => probe.Run(() => Task.FromResult("third loader"))), Is.EqualTo("first loader"));
        Assert.That(probe.Calls, Is.EqualTo(1));
    }

    [Test]
    public async Task EachCallersHardTimeout_CountsFromItsOwnCall()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => o.LoaderHardTimeout = Hard, time: time);
        var loader = new TestCaches.GatedLoader<string>();
        int armed = time.ArmedTimers;
        var first = cache.GetOrLoadAsync("k", loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1 && time.ArmedTimers > armed, "the first caller waits under its hard timeout");

        time.Advance(TimeSpan.FromSeconds(2));
        var second = cache.GetOrLoadAsync("k", loader.Load).AsTask();
        await TestCaches.Until(() => cache.WaitersFor("k") == 2 || second.IsCompleted, "the second caller joins");

        time.Advance(TimeSpan.FromSeconds(1)); // the first caller's 3 s are up; the second has waited 1 s
        await Expect.ThrowsAsync<TimeoutException>(first);
        Assert.That(second.IsCompleted, Is.False, "The second caller's wait ended at the first caller's hard timeout, 1 s into its own.");

        await TestCaches.Until(() => time.ArmedTimers > armed, "the second caller's own hard timeout is armed");
        time.Advance(TimeSpan.FromSeconds(2));
        await Expect.ThrowsAsync<TimeoutException>(second);
        Assert.That(loader.Calls, Is.EqualTo(1));
        loader.Gate.SetResult("v");
    }

    [Test]
    public async Task AJoiningCallersHardTimeout_HoldsWhenTheLeaderHasNone()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(time: time);
        var loader = new TestCaches.GatedLoader<string>();
        var first = cache.GetOrLoadAsync("k", loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "the leader's load runs, without a hard timeout");

        int armed = time.ArmedTimers;
        var second = cache.GetOrLoadAsync("k", loader.Load, new CacheEntryOptions { LoaderHardTimeout = Hard }).AsTask();
        await TestCaches.Until(() => second.IsCompleted || time.ArmedTimers > armed, "the joining caller's own hard timeout is armed");
        time.Advance(Hard);

        await Expect.ThrowsAsync<TimeoutException>(second);
        Assert.That(first.IsCompleted, Is.False, "The leader has no hard timeout: it still waits.");
        loader.Gate.SetResult("v");
        Assert.That(await first.WaitAsync(Guard), Is.EqualTo("v"));
        Assert.That(loader.Calls, Is.EqualTo(1));
    }

    [Test]
    public async Task AfterARemoveDuringASlowLoad_TheNextLoadStartsOnlyOnceTheSupersededOneHasFinished()
    {
        using var cache = TestCaches.Create();
        var probe = new ConcurrencyProbe();
        var oldGate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var newGate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = cache.GetOrLoadAsync("k", _ => probe.Run(() => oldGate.Task)).AsTask();
        await TestCaches.Until(() => probe.Calls == 1, "the first load runs");

        await cache.RemoveAsync("k");
        var second = cache.GetOrLoadAsync("k", _ => probe.Run(() => newGate.Task)).AsTask();
        oldGate.SetResult("old");
        Assert.That(await first.WaitAsync(Guard), Is.EqualTo("old"));

        await TestCaches.Until(() => probe.Calls == 2, "the next load starts once the superseded one has finished");
        newGate.SetResult("new");
        Assert.That(await second.WaitAsync(Guard), Is.EqualTo("new"), "A caller that started after the removal got the superseded load's result.");
        Assert.That(probe.Max, Is.EqualTo(1), "The next load of the key ran alongside the superseded one.");
    }
}
