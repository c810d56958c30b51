using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (a), the load paths, and section 1's "one publish step": a load that started before a
/// <c>SetAsync</c>, <c>RemoveAsync</c>, <c>RemoveByTagAsync("*")</c> or backplane invalidation of its key finishes
/// after it. Its result may reach the callers that were waiting for it, but never L1 or L2: not from a load in flight,
/// not from one that finishes in the background after a soft or hard timeout (its callers are gone, but the
/// invalidation still came after it started), not as a fail-safe value re-armed after a failure, and not through an L2
/// write that was still in flight.
/// </summary>
public class ALoadThatStartedBeforeAnInvalidation_NeverLandsAfterIt
{
    private const string Key = "item-7";
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    private static Func<CancellationToken, Task<string>> Loads(string value) => _ => Task.FromResult(value);

    /// <summary>Asserts what node A, and a node that reads only L2, give a caller that starts now.</summary>
    private static async Task AssertNothingOlderLandedAsync(Cluster cluster, Invalidation kind, bool checkL2 = true)
    {
        string expected = Cluster.Expected(kind, "fresh");
        Assert.That(
            await cluster.A.GetOrLoadAsync(Key, Loads("fresh")),
            Is.EqualTo(expected),
            $"Node A served the result of work that started before {kind} to a caller that started after it.");
        if (checkL2)
        {
            Assert.That(
                await cluster.NewNode().GetOrLoadAsync(Key, Loads("fresh")),
                Is.EqualTo(expected),
                $"L2 holds the result of work that started before {kind}, written after it.");
        }
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task ALoadInFlight_KeepsItsResultOutOfBothLevels(Invalidation kind)
    {
        using var cluster = new Cluster();
        var loader = new TestCaches.GatedLoader<string>();
        var first = cluster.A.GetOrLoadAsync(Key, loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "the load starts");

        await cluster.InvalidateAsync(kind, Key);
        loader.Gate.SetResult("old");
        Assert.That(await first.WaitAsync(Guard), Is.EqualTo("old"), "The caller that started before gets its load's result.");
        await TestCaches.Until(() => cluster.A.BackgroundCount == 0, "A's background work ends");

        await AssertNothingOlderLandedAsync(cluster, kind);
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task ACallerThatStartsAfterTheInvalidation_DoesNotJoinTheLoadThatStartedBefore(Invalidation kind)
    {
        using var cluster = new Cluster();
        var loader = new TestCaches.GatedLoader<string>();
        var first = cluster.A.GetOrLoadAsync(Key, loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "the load starts");

        await cluster.InvalidateAsync(kind, Key);
        var second = cluster.A.GetOrLoadAsync(Key, Loads("fresh")).AsTask();
        loader.Gate.SetResult("old");
        Assert.That(await first.WaitAsync(Guard), Is.EqualTo("old"));

        Assert.That(
            await second.WaitAsync(Guard),
            Is.EqualTo(Cluster.Expected(kind, "fresh")),
            $"A caller that started after {kind} completed joined the load that started before it.");
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task ALoadFinishingInTheBackgroundAfterASoftTimeout_KeepsItsResultOutOfBothLevels(Invalidation kind)
    {
        using var cluster = new Cluster(o => { o.DefaultExpiration = TimeSpan.FromMinutes(1); o.FailSafe = true; o.LoaderSoftTimeout = TimeSpan.FromSeconds(1); });
        await cluster.A.GetOrLoadAsync(Key, Loads("v0"));
        cluster.Time.Advance(TimeSpan.FromMinutes(1)); // v0 is stale: the soft timeout applies

        var loader = new TestCaches.GatedLoader<string>();
        int armed = cluster.Time.ArmedTimers;
        var first = cluster.A.GetOrLoadAsync(Key, loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1 && cluster.Time.ArmedTimers > armed, "the loader runs under its soft timeout");
        cluster.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(await first.WaitAsync(Guard), Is.EqualTo("v0"), "The soft timeout hands out the stale value.");

        await cluster.InvalidateAsync(kind, Key);
        loader.Gate.SetResult("late");
        await TestCaches.Until(() => cluster.A.BackgroundCount == 0, "the background load finishes");

        await AssertNothingOlderLandedAsync(cluster, kind);
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task ALoadFinishingInTheBackgroundAfterAHardTimeout_KeepsItsResultOutOfBothLevels(Invalidation kind)
    {
        using var cluster = new Cluster(o => o.LoaderHardTimeout = TimeSpan.FromSeconds(3));
        var loader = new TestCaches.GatedLoader<string>();
        int armed = cluster.Time.ArmedTimers;
        var first = cluster.A.GetOrLoadAsync(Key, loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1 && cluster.Time.ArmedTimers > armed, "the loader runs under its hard timeout");
        cluster.Time.Advance(TimeSpan.FromSeconds(3));
        await Expect.ThrowsAsync<TimeoutException>(first);

        await cluster.InvalidateAsync(kind, Key);
        loader.Gate.SetResult("late");
        await TestCaches.Until(() => cluster.A.BackgroundCount == 0, "the background load finishes");

        await AssertNothingOlderLandedAsync(cluster, kind);
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task AStaleValue_IsNotReArmedByAFailureThatCameAfterTheInvalidation(Invalidation kind)
    {
        using var cluster = new Cluster(o => { o.DefaultExpiration = TimeSpan.FromMinutes(1); o.FailSafe = true; });
        await cluster.A.GetOrLoadAsync(Key, Loads("v0"));
        cluster.Time.Advance(TimeSpan.FromMinutes(1));

        var loader = new TestCaches.GatedLoader<string>();
        var first = cluster.A.GetOrLoadAsync(Key, loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "the reload starts");
        await cluster.InvalidateAsync(kind, Key);
        loader.Gate.SetException(new SourceDownException());
        try
        {
            await first.WaitAsync(Guard); // started before: the stale value or the error, either is fine
        }
        catch (SourceDownException)
        {
        }

        await AssertNothingOlderLandedAsync(cluster, kind);
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    public async Task AnL2WriteStillInFlight_DoesNotLandAfterTheInvalidation(Invalidation kind)
    {
        // Backplane is left out: another node's write and this node's in-flight write race in L2 itself, which no node can order.
        using var cluster = new Cluster();
        cluster.ViewA.HoldWrites = ControlledDistributedCache.IsEntry; // the load's write of the key
        var first = cluster.A.GetOrLoadAsync(Key, Loads("old")).AsTask();
        HeldCall write = await cluster.ViewA.NextHeldAsync();
        Assert.That(write.Kind, Is.EqualTo(HeldCallKind.Write));
        cluster.ViewA.HoldWrites = null;

        // The invalidation may wait for the write in flight; it must not complete before it and then be overwritten by it.
        Task invalidation = cluster.InvalidateAsync(kind, Key);
        write.Release();
        await invalidation.WaitAsync(Guard);
        await first.WaitAsync(Guard);
        await TestCaches.Until(() => cluster.A.BackgroundCount == 0, "A's background work ends");

        await AssertNothingOlderLandedAsync(cluster, kind);
    }
}
