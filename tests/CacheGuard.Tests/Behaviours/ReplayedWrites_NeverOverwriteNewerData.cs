using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (l): a write (or removal) queued while L2 was unreachable from this node is replayed once L2
/// answers again, but never over a newer value that another node wrote to L2 meanwhile: the replay compares creation
/// times (or versions) first.
/// </summary>
public class ReplayedWrites_NeverOverwriteNewerData
{
    private static readonly TimeSpan BreakerDuration = TimeSpan.FromSeconds(5);

    private static void Options(CoalescingCacheOptions o)
    {
        o.JitterRatio = 0;
        o.DistributedCacheCircuitBreakerThreshold = 1;
        o.DistributedCacheCircuitBreakerDuration = BreakerDuration;
    }

    private static Func<CancellationToken, Task<string>> Loads(string value) => _ => Task.FromResult(value);

    /// <summary>Heals A's connection, lets its breaker probe L2, and waits until A's queue has been worked off.</summary>
    private static async Task RecoverAsync(Internal.DefaultCoalescingCache a, ControlledDistributedCache viewA, FakeTimeProvider time)
    {
        viewA.FailWith = null;
        time.Advance(BreakerDuration);
        await a.TryGetAsync<string>("unrelated"); // a call that reaches L2: the breaker's probe succeeds
        await TestCaches.Until(() => a.PendingWrites == 0 && a.BackgroundCount == 0, "A replays its queued writes");
    }

    [Test]
    public async Task AWriteQueuedDuringAnOutage_IsNotReplayedOverANewerValueFromAnotherNode()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var viewA = new ControlledDistributedCache(store);
        using var a = TestCaches.Create(Options, l2: viewA, time: time);
        using var b = TestCaches.Create(Options, l2: store, time: time);

        viewA.FailWith = () => new InvalidOperationException("L2 unreachable from A");
        await a.SetAsync("k", "a-old");
        Assert.That(a.PendingWrites, Is.EqualTo(1), "A queued its write for replay.");

        time.Advance(TimeSpan.FromSeconds(1));
        await b.SetAsync("k", "b-new");
        await RecoverAsync(a, viewA, time);

        using var reader = TestCaches.Create(Options, l2: store, time: time);
        Assert.That(await reader.GetOrLoadAsync("k", Loads("loaded")), Is.EqualTo("b-new"), "A's replay overwrote a newer value B had written meanwhile.");
    }

    [Test]
    public async Task ARemovalQueuedDuringAnOutage_IsNotReplayedOverANewerValueFromAnotherNode()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var viewA = new ControlledDistributedCache(store);
        using var a = TestCaches.Create(Options, l2: viewA, time: time);
        using var b = TestCaches.Create(Options, l2: store, time: time);
        await b.SetAsync("k", "b-old");

        viewA.FailWith = () => new InvalidOperationException("L2 unreachable from A");
        await a.RemoveAsync("k");
        Assert.That(a.PendingWrites, Is.EqualTo(1), "A queued its removal for replay.");

        time.Advance(TimeSpan.FromSeconds(1));
        await b.SetAsync("k", "b-new");
        await RecoverAsync(a, viewA, time);

        using var reader = TestCaches.Create(Options, l2: store, time: time);
        Assert.That(await reader.GetOrLoadAsync("k", Loads("loaded")), Is.EqualTo("b-new"), "A's replayed removal deleted a newer value B had written meanwhile.");
    }

    [Test]
    public async Task AWriteQueuedDuringAnOutage_IsStillReplayedWhenNothingNewerIsThere()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var viewA = new ControlledDistributedCache(store);
        using var a = TestCaches.Create(Options, l2: viewA, time: time);
        using var b = TestCaches.Create(Options, l2: store, time: time);
        await b.SetAsync("k", "b-old");

        time.Advance(TimeSpan.FromSeconds(1));
        viewA.FailWith = () => new InvalidOperationException("L2 unreachable from A");
        await a.SetAsync("k", "a-new");
        await RecoverAsync(a, viewA, time);

        using var reader = TestCaches.Create(Options, l2: store, time: time);
        Assert.That(await reader.GetOrLoadAsync("k", Loads("loaded")), Is.EqualTo("a-new"), "A's queued write, newer than what L2 held, was not replayed.");
    }
}
