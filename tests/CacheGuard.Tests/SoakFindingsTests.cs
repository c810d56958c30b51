using System.Collections.Concurrent;
using CacheGuard.Internal;
using CacheGuard.Tests.Support;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Tests;

/// <summary>Regression tests for what the soak runner (tests/CacheGuard.Soak) found, each as a deterministic scenario.</summary>
public class SoakFindingsTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Soak, seed 42: a load's L2 write sent while Redis was paused timed out, then ran when Redis resumed, over a newer
    /// write. A removal mark is now queued behind every timed-out write of a loaded value.
    /// </summary>
    [Test]
    public async Task ALoadsWriteThatTimedOut_AndLandsLater_IsTakenAwayByARemovalMarkBehindIt()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var late = new LateWrites(store);
        using var a = TestCaches.Create(o => o.JitterRatio = 0, l2: late, time: time);
        using var writer = TestCaches.Create(o => o.JitterRatio = 0, l2: store, time: time);

        Task<string> load = a.GetOrLoadAsync("k", _ => Task.FromResult("old")).AsTask();
        HeldWrite stuck = await late.NextAsync().WaitAsync(Guard);
        time.Advance(TimeSpan.FromSeconds(2)); // DistributedCacheTimeout: the write is abandoned, not cancelled
        Assert.That(await load.WaitAsync(Guard), Is.EqualTo("old"));
        Assert.That(a.PendingWrites, Is.EqualTo(1), "a removal mark waits behind the timed-out write");

        time.Advance(TimeSpan.FromSeconds(1));
        await writer.SetAsync("k", "new"); // a newer write reaches L2 first...
        late.Hold = false;
        stuck.Land(); // ...then the paused server runs the old one
        await stuck.Stored.WaitAsync(Guard);
        await a.TryGetAsync<string>("other"); // L2 answers again: the queue is replayed
        await TestCaches.Until(() => a.PendingWrites == 0 && a.BackgroundCount == 0, "the replay ran");

        using var reader = TestCaches.Create(l2: store, time: time);
        Assert.That(await reader.GetOrLoadAsync("k", _ => Task.FromResult("from the source")), Is.EqualTo("from the source"), "L2 no longer serves the late, older value");
    }

    /// <summary>
    /// Soak, seed 42 (node2, item:0): another node's load that read the source before this node's removal stored its value
    /// just after it; this node then read that older value back from L2. A node no longer trusts, for a while, an L2 entry
    /// older than its own write or removal of the key.
    /// </summary>
    [Test]
    public async Task AnOlderLoadLandingJustAfterThisNodesWrite_IsNotServedByThisNode()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var viewB = new ControlledDistributedCache(store) { HoldWrites = ControlledDistributedCache.IsEntry };
        Action<CoalescingCacheOptions> options = o => { o.JitterRatio = 0; o.DefaultLocalExpiration = TimeSpan.FromMilliseconds(500); };
        using var a = TestCaches.Create(options, l2: store, time: time);
        using var b = TestCaches.Create(options, l2: viewB, time: time);

        Task<string> older = b.GetOrLoadAsync("k", _ => Task.FromResult("old")).AsTask();
        HeldCall bWrites = await viewB.NextHeldAsync();
        time.Advance(TimeSpan.FromMilliseconds(100));
        await a.SetAsync("k", "new");
        bWrites.Release(); // B's older load reaches L2 after A's write
        Assert.That(await older.WaitAsync(Guard), Is.EqualTo("old"));

        time.Advance(TimeSpan.FromSeconds(1)); // A's L1 copy has expired: the next read goes to L2
        Assert.That(await a.GetOrLoadAsync("k", _ => Task.FromResult("from the source")), Is.EqualTo("from the source"), "A served an L2 value older than its own write");
    }

    /// <summary>
    /// Soak, seeds 5 and 42: a key holding another kind of data (Redis WRONGTYPE) failed every write of it; the failures
    /// opened the breaker for every key, and nothing repaired the key. A key error no longer counts towards the breaker,
    /// and a write the server refuses removes the key and writes again.
    /// </summary>
    [Test]
    public async Task AKeyTheServerRefuses_DoesNotOpenTheBreaker_AndIsRepaired()
    {
        var time = new FakeTimeProvider();
        var l2 = new RefusesKeyUntilRemoved(new FakeDistributedCache(time), "k");
        using var cache = TestCaches.Create(o => o.DistributedCacheCircuitBreakerThreshold = 1, l2: l2, time: time, health: new ConnectionHealth());

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("v")), Is.EqualTo("v"));

        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Closed), "one key's refusal is not an L2 outage");
        Assert.That(l2.Removed, Is.True, "the refused key was removed");
        using var other = TestCaches.Create(l2: l2.Inner, time: time);
        Assert.That((await other.TryGetAsync<string>("k")).Value, Is.EqualTo("v"), "and written again");
    }

    /// <summary>
    /// Soak, seed 42: corrupt entries of another Redis type logged "the distributed cache is failing" then "answers again"
    /// for each read of them, and counted as trouble. A read the server refuses is one unusable entry (event 5), not an
    /// L2 state change.
    /// </summary>
    [Test]
    public async Task AReadTheServerRefuses_IsLoggedAsAnUnusableEntry_NotAsL2Failing()
    {
        var time = new FakeTimeProvider();
        var logs = new LogCapture();
        var l2 = new RefusesKeyUntilRemoved(new FakeDistributedCache(time), "k");
        using var cache = TestCaches.Create(l2: l2, time: time, logs: logs, health: new ConnectionHealth());

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("v")), Is.EqualTo("v"));
        await cache.SetAsync("other", "w"); // L2 answers for another key

        Assert.That(logs.Count(Log.L2PayloadRejectedId), Is.EqualTo(1), "the refused read is one unusable entry");
        Assert.That(logs.Entries.Single(e => e.Id.Id == Log.L2PayloadRejectedId).Level, Is.EqualTo(LogLevel.Warning));
        Assert.That(logs.Count(Log.L2FailingId) + logs.Count(Log.L2RecoveredId), Is.Zero, "L2 as a whole never failed");
        Assert.That(l2.Removed, Is.True, "the load's write repaired the key");
    }

    /// <summary>
    /// Soak, seed 42: two batches on two nodes each held one key's distributed lock while waiting for the other's, until
    /// DistributedLoadLockTimeout. A batch now loads the keys it holds before it waits for any other owner.
    /// </summary>
    [Test]
    public async Task ABatch_LoadsTheKeysItHolds_BeforeWaitingForOtherOwners()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var locks = new InMemoryLoadLock();
        var options = new CoalescingCacheOptions { Name = "batch-locks", JitterRatio = 0, DistributedLoadLock = true };
        using var cache = new DefaultCoalescingCache(options, l2, time, loadLock: locks);
        using var otherNode = TestCaches.Create(o => o.JitterRatio = 0, l2: l2, time: time);
        IAsyncDisposable otherOwner = (await locks.TryAcquireAsync("__cacheguard:lock:0::k2", CancellationToken.None))!;

        var asked = new ConcurrentQueue<string[]>();
        Task<IReadOnlyDictionary<string, string>> batch = cache.GetOrLoadManyAsync(["k1", "k2"], (keys, _) =>
        {
            asked.Enqueue([.. keys]);
            return Task.FromResult<IReadOnlyDictionary<string, string>>(keys.ToDictionary(k => k, k => "loaded " + k));
        }).AsTask();

        await TestCaches.Until(() => !asked.IsEmpty, "the batch loads the key it holds");
        Assert.That(asked.Single(), Is.EqualTo(new[] { "k1" }), "k1 loaded while another node still holds k2's lock");

        await otherNode.SetAsync("k2", "the owner's value"); // the owner stores its result, then releases
        await otherOwner.DisposeAsync();
        IReadOnlyDictionary<string, string> result = await batch.WaitAsync(Guard);

        Assert.That(result, Is.EquivalentTo(new Dictionary<string, string> { ["k1"] = "loaded k1", ["k2"] = "the owner's value" }));
        Assert.That(asked, Has.Count.EqualTo(1), "k2 came from its owner, not from a second load");
    }

    /// <summary>
    /// Soak, seeds 3 and 42: after a Redis fault, hot keys stalled on every node for LoaderHardTimeout with no load of them
    /// at all. A batch waiting for two other owners took over the lock of the first key whose owner left no value, then
    /// held it (renewed, unloaded) until the other owner had finished too: seconds, up to DistributedLoadLockTimeout when
    /// that owner was another batch doing the same. A batch now loads and releases each key as soon as it takes it over.
    /// </summary>
    [Test]
    public async Task ABatch_LoadsAKeyItTookOver_WithoutWaitingForTheOtherOwners()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var locks = new InMemoryLoadLock();
        var options = new CoalescingCacheOptions { Name = "batch-locks", JitterRatio = 0, DistributedLoadLock = true };
        using var cache = new DefaultCoalescingCache(options, l2, time, loadLock: locks);
        using var otherNode = TestCaches.Create(o => o.JitterRatio = 0, l2: l2, time: time);
        const string lockK1 = "__cacheguard:lock:0::k1";
        const string lockK2 = "__cacheguard:lock:0::k2";
        IAsyncDisposable ownerOfK1 = (await locks.TryAcquireAsync(lockK1, CancellationToken.None))!;
        IAsyncDisposable ownerOfK2 = (await locks.TryAcquireAsync(lockK2, CancellationToken.None))!;

        var asked = new ConcurrentQueue<string[]>();
        Task<IReadOnlyDictionary<string, string>> batch = cache.GetOrLoadManyAsync(["k1", "k2"], (keys, _) =>
        {
            asked.Enqueue([.. keys]);
            return Task.FromResult<IReadOnlyDictionary<string, string>>(keys.ToDictionary(k => k, k => "loaded " + k));
        }).AsTask();
        await TestCaches.Until(() => locks.Waiting == 2, "the batch waits for both owners");

        await ownerOfK1.DisposeAsync(); // k1's owner leaves without a value: the batch takes its lock over
        await TestCaches.Until(() => !asked.IsEmpty && !locks.IsHeld(lockK1), "the batch loads k1 and lets its lock go");
        Assert.That(asked.Single(), Is.EqualTo(new[] { "k1" }), "k1 loaded while another node still holds k2's lock");
        Assert.That(locks.IsHeld(lockK2), Is.True, "k2's owner was still loading");

        await otherNode.SetAsync("k2", "the owner's value"); // k2's owner stores its result, then releases
        await ownerOfK2.DisposeAsync();
        IReadOnlyDictionary<string, string> result = await batch.WaitAsync(Guard);

        Assert.That(result, Is.EquivalentTo(new Dictionary<string, string> { ["k1"] = "loaded k1", ["k2"] = "the owner's value" }));
        Assert.That(asked, Has.Count.EqualTo(1), "k2 came from its owner, not from a load");
        Assert.That(locks.IsHeld(lockK1) || locks.IsHeld(lockK2), Is.False, "no lock is left held");
    }

    /// <summary>
    /// Soak, seeds 7 and 1234: hot tagged keys stalled on every node for a second at a time. A flight that held the key's
    /// distributed lock was replaced (a tag invalidation) before its loader started, and took the new flight's result while
    /// still holding the lock the new flight was waiting for. A replaced flight now lets go of its lock first.
    /// </summary>
    [Test]
    public async Task AFlightReplacedWhileHoldingTheLock_ReleasesItBeforeFollowingItsSuccessor()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        int entryReads = 0;
        var view = new ControlledDistributedCache(store) { HoldReads = (key, _) => key == "k" && Interlocked.Increment(ref entryReads) == 2 };
        var options = new CoalescingCacheOptions { Name = "replaced-owner", JitterRatio = 0, DistributedLoadLock = true };
        using var cache = new DefaultCoalescingCache(options, view, time, loadLock: new InMemoryLoadLock());
        var tagged = new CacheEntryOptions { Tags = ["t"] };

        Task<string> first = cache.GetOrLoadAsync("k", _ => Task.FromResult("first"), tagged).AsTask();
        HeldCall ownersRead = await view.NextHeldAsync(); // the first flight holds the lock and reads L2 once more
        await cache.RemoveByTagAsync("t");
        time.Advance(TimeSpan.FromTicks(1));
        view.HoldReads = null;
        Task<string> second = cache.GetOrLoadAsync("k", _ => Task.FromResult("second"), tagged).AsTask(); // a new flight: it waits for the lock
        ownersRead.Release();

        Assert.That(await second.WaitAsync(Guard), Is.EqualTo("second"), "the new flight got the lock once the replaced one let it go");
        Assert.That(await first.WaitAsync(Guard), Is.EqualTo("second"), "the replaced flight's caller took the new flight's result");
    }

    /// <summary>
    /// Soak, seed 1234: node 2 queued a write during a Redis outage; node 3 removed the key later (queued too), and its
    /// announcement went out before node 2's subscription was back. Redis restarted empty, node 2 replayed its older write
    /// into it, and node 3 served it for seconds. A node whose backplane may have lost messages turns its queued writes
    /// into removals.
    /// </summary>
    [Test]
    public async Task AQueuedWrite_BecomesARemoval_WhenTheBackplaneMayHaveLostMessages()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var viewA = new ControlledDistributedCache(store);
        var backplane = new InMemoryBackplane();
        using var a = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "lost-messages", JitterRatio = 0 }, viewA, time, backplane: backplane, health: new ConnectionHealth());
        using var b = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "lost-messages", JitterRatio = 0 }, store, time); // its announcements are lost

        backplane.Sender.Value = a; // A does not hear its own announcements
        viewA.FailWith = () => new IOException("connection lost");
        await a.SetAsync("k", "A's write");
        Assert.That(a.PendingWrites, Is.EqualTo(1), "queued while A cannot reach L2");
        time.Advance(TimeSpan.FromMilliseconds(10));
        await b.RemoveAsync("k"); // a later change of the key; A never hears of it
        foreach (string key in store.Keys)
        {
            store.RemoveRaw(key); // the server restarts empty
        }

        backplane.LoseMessages();
        viewA.FailWith = null;
        time.Advance(TimeSpan.FromMinutes(1));
        await a.GetOrLoadAsync("other", _ => Task.FromResult("x")); // A reaches L2 again and replays
        await TestCaches.Until(() => a.PendingWrites == 0 && a.BackgroundCount == 0, "the replay ends");

        using var c = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "lost-messages", JitterRatio = 0 }, store, time);
        Assert.That(await c.GetOrLoadAsync("k", _ => Task.FromResult("from the source")), Is.EqualTo("from the source"), "A's older write was not replayed over B's later removal");
    }

    /// <summary>
    /// Between a replay's check of L2 and its write, another node may store a newer load of the key: the replay lands over
    /// it. The replaying node announces the key, and the node whose newer value was overwritten removes the older one.
    /// </summary>
    [Test]
    public async Task AReplayThatLandsOverANewerLoad_IsRemovedByTheLoadingNode()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var viewA = new ControlledDistributedCache(store);
        var backplane = new InMemoryBackplane();
        using var a = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "replay-race", JitterRatio = 0 }, viewA, time, backplane: backplane, health: new ConnectionHealth());
        using var b = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "replay-race", JitterRatio = 0 }, store, time, backplane: backplane);

        viewA.FailWith = () => new IOException("connection lost");
        backplane.Sender.Value = a;
        await a.SetAsync("k", "A's write");
        Assert.That(a.PendingWrites, Is.EqualTo(1));
        viewA.FailWith = null;
        time.Advance(TimeSpan.FromMinutes(1));
        viewA.HoldWrites = (l2Key, value) => ControlledDistributedCache.IsEntry(l2Key, value) && l2Key.EndsWith('k');
        await a.GetOrLoadAsync("other", _ => Task.FromResult("x")); // A replays: it checks L2 (empty), then writes
        HeldCall replay = await viewA.NextHeldAsync();

        backplane.Sender.Value = b;
        time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.That(await b.GetOrLoadAsync("k", _ => Task.FromResult("B's newer load")), Is.EqualTo("B's newer load"));
        backplane.Sender.Value = a;
        replay.Release(); // the replay lands over B's newer value
        await TestCaches.Until(() => a.PendingWrites == 0 && a.BackgroundCount == 0 && b.BackgroundCount == 0, "the replay and its announcement are handled");

        using var c = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "replay-race", JitterRatio = 0 }, store, time);
        Assert.That(await c.GetOrLoadAsync("k", _ => Task.FromResult("from the source")), Is.EqualTo("from the source"), "the older replayed value does not stay in L2");
    }

    /// <summary>
    /// Soak, seed 99 (node1, item:132): a batch read sent while this node's removal of a key waited for replay came back
    /// after the replay had landed, holding the older value, and the node served it after its own removal. A key with a
    /// write queued when a read goes out is a miss, and a replayed write stays queued until it has landed.
    /// </summary>
    [Test]
    public async Task ABatchReadSentWhileARemovalWaitsForReplay_DoesNotServeTheOlderValue_WhenTheReplayLandsFirst()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var viewA = new ControlledDistributedCache(store);
        var batch = new HeldBatchReader(store);
        using var a = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "replay-read", JitterRatio = 0 }, viewA, time, batchReader: batch, health: new ConnectionHealth());
        using var b = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "replay-read", JitterRatio = 0 }, store, time);

        await b.SetAsync("k", "old");
        viewA.FailWith = () => new IOException("connection lost");
        await a.RemoveAsync("k");
        Assert.That(a.PendingWrites, Is.EqualTo(1), "the removal waits for replay");
        viewA.FailWith = null;
        time.Advance(TimeSpan.FromMinutes(1));

        viewA.HoldReads = (l2Key, _) => l2Key.EndsWith('k');
        await a.GetOrLoadAsync("other", _ => Task.FromResult("x")); // A reaches L2 again: the removal is replayed...
        HeldCall replayCheck = await viewA.NextHeldAsync(); // ...once it has checked what L2 holds now

        batch.Hold = true;
        Task<IReadOnlyDictionary<string, string>> read = a.GetOrLoadManyAsync<string>(["k"], (keys, _) => Task.FromResult<IReadOnlyDictionary<string, string>>(keys.ToDictionary(k => k, _ => "from the source"))).AsTask();
        await batch.Sent.Task.WaitAsync(Guard); // the read goes out while L2 still holds "old"

        replayCheck.Release();
        await TestCaches.Until(() => a.PendingWrites == 0, "the replay landed"); // (the held batch counts as background work)
        batch.Release(); // the answer, sent before the replay landed, arrives after it

        Assert.That((await read.WaitAsync(Guard))["k"], Is.EqualTo("from the source"), "A served the value its own removal had replaced");
    }

    /// <summary>
    /// Soak, seed 1234 (item:12): node1's load reached L2 just after node2's removal; node3 read it from L2 into its L1
    /// before node1, hearing of the removal, took it out of L2 again. Node1 now announces that removal, so node3 drops it.
    /// </summary>
    [Test]
    public async Task AnOlderLoadTakenBackOutOfL2_IsAnnounced_SoANodeThatReadItDropsIt()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var viewA = new ControlledDistributedCache(store) { HoldWrites = (l2Key, value) => ControlledDistributedCache.IsEntry(l2Key, value) && l2Key.EndsWith('k') };
        var backplane = new InMemoryBackplane();
        var options = new CoalescingCacheOptions { Name = "taken-back", JitterRatio = 0 };
        using var a = new DefaultCoalescingCache(options, viewA, time, backplane: backplane);
        using var b = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "taken-back", JitterRatio = 0 }, store, time); // its announcement is delivered by hand, late
        using var c = new DefaultCoalescingCache(new CoalescingCacheOptions { Name = "taken-back", JitterRatio = 0 }, store, time, backplane: backplane);

        Task<string> load = a.GetOrLoadAsync("k", _ => Task.FromResult("old")).AsTask();
        HeldCall write = await viewA.NextHeldAsync();
        time.Advance(TimeSpan.FromMilliseconds(10));
        await b.RemoveAsync("k");
        viewA.HoldWrites = null;
        write.Release(); // A's older load lands over B's removal
        Assert.That(await load.WaitAsync(Guard), Is.EqualTo("old"));
        Assert.That(await c.GetOrLoadAsync("k", _ => Task.FromResult("from the source")), Is.EqualTo("old"), "C reads it from L2 before A takes it back");

        a.OnInvalidation(new CacheInvalidation("taken-back", "k", null)); // B's announcement reaches A
        await TestCaches.Until(() => a.BackgroundCount == 0, "A took its value back out of L2");

        Assert.That(await c.GetOrLoadAsync("k", _ => Task.FromResult("from the source")), Is.EqualTo("from the source"), "C kept the older value in L1");
    }

    /// <summary>
    /// Soak, seed 42 (node1, 37-46 s): with writes queued for replay, the breaker's probe went to reads of those keys, which
    /// end without calling L2 (their queued write is newer); each lost probe kept the breaker from closing for another
    /// period while Redis was healthy, and the node's writes stayed queued. A read asks the breaker only as its call goes out.
    /// </summary>
    [Test]
    public async Task AReadOfAKeyWithAQueuedWrite_DoesNotTakeTheBreakersProbe()
    {
        var time = new FakeTimeProvider();
        var store = new FakeDistributedCache(time);
        var view = new ControlledDistributedCache(store);
        using var cache = TestCaches.Create(o => { o.JitterRatio = 0; o.DefaultLocalExpiration = TimeSpan.FromSeconds(10); }, l2: view, time: time, health: new ConnectionHealth());

        view.FailWith = () => new IOException("connection lost");
        await cache.SetAsync("k", "v");
        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Open), "a lost connection opens the breaker");
        Assert.That(cache.PendingWrites, Is.EqualTo(1));
        view.FailWith = null;
        time.Advance(TimeSpan.FromMinutes(1)); // the probe is due

        await cache.TryGetAsync<string>("k"); // expired from L1: a read of a key whose write waits for replay
        await cache.GetOrLoadAsync("other", _ => Task.FromResult("x"));

        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Closed), "the read of the queued key took the probe and never reported");
        await TestCaches.Until(() => cache.PendingWrites == 0, "the queued write is replayed");
    }

    /// <summary>
    /// Soak, seed 2 (node1, 41 s): removals of keys holding another kind of data (Redis WRONGTYPE) failed, were queued, and
    /// every replay failed on them again, opening the breaker of a node whose Redis was healthy; its later writes waited
    /// for replay while other nodes read the older values. A removal the server refuses now removes the key and writes
    /// the mark, and a replay does the same.
    /// </summary>
    [Test]
    public async Task ARemovalTheServerRefuses_IsRepaired_NotQueuedToFailAgain()
    {
        var time = new FakeTimeProvider();
        var l2 = new RefusesKeyUntilRemoved(new FakeDistributedCache(time), "k");
        using var cache = TestCaches.Create(o => o.DistributedCacheCircuitBreakerThreshold = 1, l2: l2, time: time, health: new ConnectionHealth());

        await cache.RemoveAsync("k");
        await cache.SetAsync("other", "w"); // L2 answers: anything queued would be replayed now
        await TestCaches.Until(() => cache.BackgroundCount == 0, "background work ends");

        Assert.That(cache.PendingWrites, Is.Zero, "the refused removal was repaired, not queued");
        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Closed), "one key's refusal is not an L2 outage");
        Assert.That(l2.Removed, Is.True);
        using var other = TestCaches.Create(l2: l2.Inner, time: time);
        Assert.That(await other.GetOrLoadAsync("k", _ => Task.FromResult("from the source")), Is.EqualTo("from the source"), "the key reads as removed");
    }

    /// <summary>A batch reader that answers with what the store held when the read went out, once released.</summary>
    private sealed class HeldBatchReader(FakeDistributedCache store) : IBatchDistributedCache
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Hold { get; set; }

        public TaskCompletionSource Sent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _release.TrySetResult();

        public async ValueTask<byte[]?[]> GetManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
        {
            byte[]?[] snapshot = [.. keys.Select(store.Raw)];
            if (Hold)
            {
                Sent.TrySetResult();
                await _release.Task.ConfigureAwait(false);
            }

            return snapshot;
        }
    }

    private sealed class ConnectionHealth : IDistributedCacheHealth
    {
        public bool IsAvailable => true;

        public event EventHandler? AvailabilityChanged
        {
            add { }
            remove { }
        }

        public bool IsConnectionFailure(Exception exception) => exception is IOException;
    }

    /// <summary>An L2 whose key holds data of another kind: reads and writes of it fail until it is removed.</summary>
    private sealed class RefusesKeyUntilRemoved(FakeDistributedCache inner, string refused) : IDistributedCache
    {
        public FakeDistributedCache Inner => inner;

        public bool Removed { get; private set; }

        public byte[]? Get(string key) => throw new NotSupportedException();

        public Task<byte[]?> GetAsync(string key, CancellationToken token = default) =>
            key == refused && !Removed
                ? Task.FromException<byte[]?>(new InvalidOperationException("WRONGTYPE Operation against a key holding the wrong kind of value"))
                : inner.GetAsync(key, token);

        public void Refresh(string key) => throw new NotSupportedException();

        public Task RefreshAsync(string key, CancellationToken token = default) => Task.CompletedTask;

        public void Remove(string key) => throw new NotSupportedException();

        public Task RemoveAsync(string key, CancellationToken token = default)
        {
            Removed |= key == refused;
            return inner.RemoveAsync(key, token);
        }

        public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => throw new NotSupportedException();

        public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default) =>
            key == refused && !Removed
                ? Task.FromException(new InvalidOperationException("WRONGTYPE Operation against a key holding the wrong kind of value"))
                : inner.SetAsync(key, value, options, token);
    }

    /// <summary>An L2 connection whose entry writes are held, ignoring their token, and land only when the test says so.</summary>
    private sealed class LateWrites(FakeDistributedCache store) : IDistributedCache
    {
        private readonly System.Threading.Channels.Channel<HeldWrite> _held = System.Threading.Channels.Channel.CreateUnbounded<HeldWrite>();

        public bool Hold { get; set; } = true;

        public Task<HeldWrite> NextAsync() => _held.Reader.ReadAsync().AsTask();

        public byte[]? Get(string key) => throw new NotSupportedException();

        public Task<byte[]?> GetAsync(string key, CancellationToken token = default) => store.GetAsync(key, token);

        public void Refresh(string key) => throw new NotSupportedException();

        public Task RefreshAsync(string key, CancellationToken token = default) => Task.CompletedTask;

        public void Remove(string key) => throw new NotSupportedException();

        public Task RemoveAsync(string key, CancellationToken token = default) => store.RemoveAsync(key, token);

        public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => throw new NotSupportedException();

        public async Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
        {
            if (Hold && ControlledDistributedCache.IsEntry(key, value))
            {
                var held = new HeldWrite();
                _held.Writer.TryWrite(held);
                await held.Landed.ConfigureAwait(false); // a paused server: the token does not stop what was already sent
                await store.SetAsync(key, value, options, CancellationToken.None).ConfigureAwait(false);
                held.MarkStored();
                return;
            }

            await store.SetAsync(key, value, options, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private sealed class HeldWrite
    {
        private readonly TaskCompletionSource _land = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _stored = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Landed => _land.Task;

        /// <summary>Gets a task that completes once the held write has reached the store.</summary>
        public Task Stored => _stored.Task;

        public void Land() => _land.TrySetResult();

        public void MarkStored() => _stored.TrySetResult();
    }
}
