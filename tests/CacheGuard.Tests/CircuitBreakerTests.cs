using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class CircuitBreakerTests
{
    private static void Breaker(CoalescingCacheOptions o)
    {
        o.DistributedCacheCircuitBreakerThreshold = 3;
        o.DistributedCacheCircuitBreakerWindow = TimeSpan.FromSeconds(10);
        o.DistributedCacheCircuitBreakerDuration = TimeSpan.FromSeconds(30);
    }

    [Test]
    public async Task Opens_AfterThresholdFailures_SkipsL2_ThenProbesAndCloses()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time) { ReadFault = L2Fault.ThrowSynchronously, WriteFault = L2Fault.ThrowSynchronously };
        var logs = new LogCapture();
        using var cache = TestCaches.Create(Breaker, l2: l2, time: time, logs: logs);
        using var metrics = new MetricCapture(cache.Name);

        // One load = a failed read and a failed write: two failures; the second load's read is the third.
        await cache.GetOrLoadAsync("a", _ => Task.FromResult(1));
        await cache.GetOrLoadAsync("b", _ => Task.FromResult(2));
        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Open));
        Assert.That(logs.Count(Log.CircuitBreakerOpenedId), Is.EqualTo(1));
        Assert.That(metrics["cacheguard.cache.l2.circuit_breaker.transitions|cache.circuit_state=open"], Is.EqualTo(1));

        int calls = l2.Gets + l2.Sets;
        Assert.That(await cache.GetOrLoadAsync("c", _ => Task.FromResult(3)), Is.EqualTo(3), "Served by the loader while open.");
        Assert.That(l2.Gets + l2.Sets, Is.EqualTo(calls), "No L2 call while open.");

        // L2 recovers; after the open period one call probes and closes the breaker.
        l2.ReadFault = L2Fault.None;
        l2.WriteFault = L2Fault.None;
        time.Advance(TimeSpan.FromSeconds(30));
        await cache.GetOrLoadAsync("d", _ => Task.FromResult(4));
        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Closed));
        Assert.That(logs.Count(Log.CircuitBreakerClosedId), Is.EqualTo(1));
    }

    [Test]
    public async Task AFailedProbe_ReopensIt()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time) { ReadFault = L2Fault.ThrowSynchronously, WriteFault = L2Fault.ThrowSynchronously };
        using var cache = TestCaches.Create(Breaker, l2: l2, time: time);
        await cache.GetOrLoadAsync("a", _ => Task.FromResult(1));
        await cache.GetOrLoadAsync("b", _ => Task.FromResult(2));
        time.Advance(TimeSpan.FromSeconds(30));

        int gets = l2.Gets;
        await cache.GetOrLoadAsync("c", _ => Task.FromResult(3));
        Assert.That(l2.Gets, Is.EqualTo(gets + 1), "One probe.");
        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Open));
    }

    [Test]
    public async Task FailuresSpreadBeyondTheWindow_DoNotOpenIt()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time) { ReadFault = L2Fault.ThrowSynchronously };
        using var cache = TestCaches.Create(Breaker, l2: l2, time: time);

        for (int i = 0; i < 5; i++)
        {
            await cache.GetOrLoadAsync($"k{i}", _ => Task.FromResult(i));
            time.Advance(TimeSpan.FromSeconds(6));
        }

        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Closed));
    }

    [Test]
    public async Task WritesThatFailed_AreReplayedWhenL2IsBack_LatestValuePerKey()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time) { WriteFault = L2Fault.ThrowSynchronously };
        using var cache = TestCaches.Create(Breaker, l2: l2, time: time);

        await cache.SetAsync("k", "first");
        await cache.SetAsync("k", "second");
        await cache.SetAsync("other", "x");
        await cache.RemoveAsync("gone");
        Assert.That(cache.PendingWrites, Is.EqualTo(3));

        l2.WriteFault = L2Fault.None;
        time.Advance(TimeSpan.FromSeconds(30));
        await cache.TryGetAsync<string>("unrelated"); // a successful L2 call triggers the replay
        await TestCaches.Until(() => cache.PendingWrites == 0 && cache.BackgroundCount == 0, "the replay finishes");

        using var otherNode = TestCaches.Create(l2: l2, time: time);
        Assert.That((await otherNode.TryGetAsync<string>("k")).Value, Is.EqualTo("second"));
        Assert.That((await otherNode.TryGetAsync<string>("other")).Value, Is.EqualTo("x"));
    }

    /// <summary>
    /// After an outage hundreds of writes may wait, and every read of a waiting key on this node is a miss until its write
    /// lands: the replay writes many keys at once, not one after another (the soak saw ~200 take 1.4 s after a restart).
    /// </summary>
    [Test]
    public async Task TheReplay_WritesManyKeysAtOnce_AndAllLand()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var view = new ControlledDistributedCache(store) { FailWith = () => new IOException("connection lost") };
        using var cache = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "replay", JitterRatio = 0, DistributedCacheCircuitBreakerDuration = TimeSpan.Zero }, view, time);
        const int Keys = 20;
        for (int i = 0; i < Keys; i++)
        {
            await cache.SetAsync($"k{i}", i);
        }

        Assert.That(cache.PendingWrites, Is.EqualTo(Keys));
        view.FailWith = null;
        view.HoldWrites = ControlledDistributedCache.IsEntry;
        await cache.TryGetAsync<int>("unrelated"); // a successful L2 call starts the replay

        // Sixteen writes are under way before any of them is answered; one after another, the second would never come.
        var held = new List<HeldCall>();
        for (int i = 0; i < 16; i++)
        {
            held.Add(await view.NextHeldAsync());
        }

        Assert.That(held.Select(c => c.Key).Distinct().Count(), Is.EqualTo(16), "sixteen keys at once");
        view.HoldWrites = null;
        held.ForEach(c => c.Release());
        await TestCaches.Until(() => cache.PendingWrites == 0 && cache.BackgroundCount == 0, "the replay ends");

        using var other = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "replay", JitterRatio = 0 }, store, time);
        for (int i = 0; i < Keys; i++)
        {
            Assert.That((await other.TryGetAsync<int>($"k{i}")).Value, Is.EqualTo(i), $"k{i} was replayed");
        }
    }

    [Test]
    public async Task WhenTheReplayQueueIsFull_TheKeyIsDroppedFromL1Too()
    {
        var l2 = new FakeDistributedCache { WriteFault = L2Fault.ThrowSynchronously };
        var logs = new LogCapture();
        using var cache = TestCaches.Create(o => { Breaker(o); o.MaxPendingDistributedWrites = 2; }, l2: l2, logs: logs);

        await cache.SetAsync("a", 1);
        await cache.SetAsync("b", 2);
        await cache.SetAsync("c", 3);

        Assert.That(cache.PendingWrites, Is.EqualTo(2));
        Assert.That(cache.IsInL1("c"), Is.False, "No node serves a value L2 never saw once it cannot be replayed.");
        Assert.That(logs.Count(Log.PendingWriteDroppedId), Is.EqualTo(1));
    }

    [Test]
    public async Task DurationZero_TurnsTheBreakerOff()
    {
        var l2 = new FakeDistributedCache { ReadFault = L2Fault.ThrowSynchronously };
        using var cache = TestCaches.Create(o => { Breaker(o); o.DistributedCacheCircuitBreakerDuration = TimeSpan.Zero; }, l2: l2);

        for (int i = 0; i < 10; i++)
        {
            await cache.GetOrLoadAsync($"k{i}", _ => Task.FromResult(i));
        }

        Assert.That(l2.Gets, Is.EqualTo(10));
        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Closed));
    }
}
