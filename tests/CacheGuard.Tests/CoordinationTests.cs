using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

/// <summary>The core's side of many nodes, with in-process stand-ins (CacheGuard.Redis.Tests cover the Redis ones).</summary>
public class CoordinationTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    private static DefaultCoalescingCache Node(FakeDistributedCache l2, FakeTimeProvider time, ICacheBackplane? backplane = null, IDistributedLoadLock? loadLock = null, LogCapture? logs = null) =>
        new(new CoalescingCacheOptions { Name = "shared", DistributedLoadLock = loadLock is not null, JitterRatio = 0 }, l2, time, logs, backplane: backplane, loadLock: loadLock);

    [Test]
    public async Task Backplane_ASetOnOneNode_EvictsTheKeyFromTheOthersL1()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var backplane = new InMemoryBackplane();
        using var a = Node(l2, time, backplane);
        using var b = Node(l2, time, backplane);
        await a.SetAsync("k", "v1");
        Assert.That(await b.GetOrLoadAsync("k", _ => Task.FromResult("loaded")), Is.EqualTo("v1"));

        backplane.Sender.Value = a;
        await a.SetAsync("k", "v2");
        backplane.Sender.Value = null;

        Assert.That(b.IsInL1("k"), Is.False);
        Assert.That(await b.GetOrLoadAsync("k", _ => Task.FromResult("loaded")), Is.EqualTo("v2"));
    }

    [Test]
    public async Task Backplane_RemoveAndTagRemovalAreAnnounced_LoadsAreNot()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var backplane = new InMemoryBackplane();
        using var a = Node(l2, time, backplane);
        using var b = Node(l2, time, backplane);
        await b.SetAsync("tagged", 1, new CacheEntryOptions { Tags = ["t"] });
        await b.SetAsync("plain", 1);
        int before = backplane.Published;

        await a.RemoveAsync("plain");
        time.Advance(TimeSpan.FromTicks(1));
        await a.RemoveByTagAsync("t");
        await a.GetOrLoadAsync("loaded", _ => Task.FromResult(1));
        await TestCaches.Until(() => a.BackgroundCount == 0, "background work has ended");

        Assert.That(backplane.Published - before, Is.EqualTo(2), "a load changes nothing other nodes hold: only the removal and the tag removal go out");
        Assert.That(b.IsInL1("plain"), Is.False);
        Assert.That(await b.GetOrLoadAsync("tagged", _ => Task.FromResult(2), new CacheEntryOptions { Tags = ["t"] }), Is.EqualTo(2), "The tag invalidation reached B at once, without waiting for its check interval.");
    }

    [Test]
    public async Task Backplane_LostMessages_DropTheWholeL1()
    {
        var time = new FakeTimeProvider();
        var backplane = new InMemoryBackplane();
        var logs = new LogCapture();
        using var a = Node(new FakeDistributedCache(time), time, backplane, logs: logs);
        await a.SetAsync("x", 1);
        await a.SetAsync("y", 2);

        backplane.LoseMessages();

        Assert.That(a.IsInL1("x") || a.IsInL1("y"), Is.False);
        Assert.That(logs.Count(Log.LocalCacheClearedId), Is.EqualTo(1));
    }

    [Test]
    public async Task Backplane_AnInvalidationDuringALoad_KeepsTheLoadsResultOutOfL1()
    {
        var time = new FakeTimeProvider();
        var backplane = new InMemoryBackplane();
        using var a = Node(new FakeDistributedCache(time), time, backplane);
        var loader = new TestCaches.GatedLoader<string>();
        var loading = a.GetOrLoadAsync("k", loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "the load starts");

        a.OnInvalidation(new CacheInvalidation("shared", "k", null)); // another node wrote k meanwhile
        loader.Gate.SetResult("read before the other node's write");

        Assert.That(await loading, Is.EqualTo("read before the other node's write"));
        Assert.That(a.IsInL1("k"), Is.False);
    }

    [Test]
    [Repeat(5)]
    public async Task LoadLock_ThreeNodesOnAColdKey_OneLoadAcrossAllNodes()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var loadLock = new InMemoryLoadLock();
        var nodes = Enumerable.Range(0, 3).Select(_ => Node(l2, time, loadLock: loadLock)).ToArray();
        var loader = new TestCaches.GatedLoader<string>();

        var calls = nodes.SelectMany(n => Enumerable.Range(0, 100).Select(_ => n.GetOrLoadAsync("cold", loader.Load).AsTask())).ToArray();
        await TestCaches.Until(() => loader.Calls == 1, "the owner loads");
        loader.Gate.SetResult("value");

        Assert.That(await Task.WhenAll(calls).WaitAsync(Guard), Has.All.EqualTo("value"));
        Assert.That(loader.Calls, Is.EqualTo(1));
        foreach (var node in nodes)
        {
            node.Dispose();
        }
    }

    [Test]
    public async Task LoadLock_Unavailable_NodesStillLoad_AndNoCallerFails()
    {
        var time = new FakeTimeProvider();
        var logs = new LogCapture();
        var loadLock = new InMemoryLoadLock { Broken = true };
        using var node = Node(new FakeDistributedCache(time), time, loadLock: loadLock, logs: logs);

        Assert.That(await node.GetOrLoadAsync("k", _ => Task.FromResult(5)), Is.EqualTo(5));
        Assert.That(logs.Count(Log.LoadLockFailedId), Is.EqualTo(1));
    }

    [Test]
    public void LoadLockOn_WithoutALock_IsAClearStartupError()
    {
        var ex = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            _ = new DefaultCoalescingCache(new CoalescingCacheOptions { DistributedLoadLock = true }, new FakeDistributedCache()));
        Assert.That(ex!.Message, Does.Contain("DistributedLoadLock").And.Contain("WithRedis"));
    }
}
