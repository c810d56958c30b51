using System.Diagnostics;
using CacheGuard;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CacheGuard.Redis.Tests;

/// <summary>The distributed load lock: one load per key across nodes sharing one real redis-server.</summary>
public class DistributedLoadLockTests
{
    private const int CallersPerNode = 500;

    [Test]
    public async Task TryAcquire_IsExclusive_AndOnlyTheOwnerCanRelease()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using var connection = new RedisConnection(TestConnections.For(server));
        await using var locks = new RedisDistributedLoadLock(connection, "app:");
        string lockKey = locks.LockKey("k");
        Assert.That(lockKey, Is.EqualTo("app:k:__lock"));

        IAsyncDisposable? held = await locks.TryAcquireAsync("k", CancellationToken.None);
        Assert.That(held, Is.Not.Null);
        Assert.That(await locks.TryAcquireAsync("k", CancellationToken.None), Is.Null, "held by another owner");
        long pttl = (await connection.ExecuteAsync(new RedisCommand("PTTL", lockKey))).ToInt64();
        Assert.That(pttl, Is.InRange(1, 30_000), "SET NX PX with the 30 s default lease");

        await held!.DisposeAsync();
        Assert.That((await connection.ExecuteAsync(new RedisCommand("EXISTS", lockKey))).ToInt64(), Is.Zero, "released");

        // A lease that expired and was taken by another node must not release the new owner's lock.
        IAsyncDisposable? stale = await locks.TryAcquireAsync("k", CancellationToken.None);
        await connection.ExecuteAsync(new RedisCommand("SET", lockKey, "someone-else", "PX", 30_000));
        await stale!.DisposeAsync();
        Assert.That((await connection.ExecuteAsync(new RedisCommand("GET", lockKey))).ToText(), Is.EqualTo("someone-else"));
    }

    [Test]
    public async Task HeldLease_IsExtendedEveryThirdOfTheLease_UntilReleased_AndLossIsLogged()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using var connection = new RedisConnection(TestConnections.For(server));
        var clock = new FakeTimeProvider();
        var logs = new CapturingLoggerProvider();
        await using var locks = new RedisDistributedLoadLock(
            connection, null, new RedisLoadLockOptions { LeaseDuration = TimeSpan.FromSeconds(30) }, new Microsoft.Extensions.Logging.Logger<RedisDistributedLoadLock>(new Microsoft.Extensions.Logging.LoggerFactory([logs])), clock);
        IAsyncDisposable? lease = await locks.TryAcquireAsync("long", CancellationToken.None);
        Assert.That(lease, Is.Not.Null);
        var pttl = new RedisCommand("PTTL", "long:__lock");

        // Stand in for 25 s of a long load: Redis's TTL runs down while the lock's clock says a renewal is due.
        await connection.ExecuteAsync(new RedisCommand("PEXPIRE", "long:__lock", 5_000));
        clock.Advance(TimeSpan.FromSeconds(10));
        await Eventually.HoldsAsync(async () => (await connection.ExecuteAsync(pttl)).ToInt64() > 20_000, "the renewal restored the 30 s lease");

        // Taken over (its lease expired and another node won it): the renewal notices, logs, and stops.
        await connection.ExecuteAsync(new RedisCommand("SET", "long:__lock", "other", "PX", 5_000));
        clock.Advance(TimeSpan.FromSeconds(10));
        await Eventually.HoldsAsync(() => logs.Count(Log.LoadLockLostId) == 1, "the lost lease is logged");
        Assert.That((await connection.ExecuteAsync(pttl)).ToInt64(), Is.LessThanOrEqualTo(5_000), "never extends another owner's lock");
        await lease!.DisposeAsync();
        Assert.That((await connection.ExecuteAsync(new RedisCommand("GET", "long:__lock"))).ToText(), Is.EqualTo("other"));
    }

    [Test]
    public async Task WaitForRelease_WakesOnTheOwnersReleaseNotification()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using var ownerConnection = new RedisConnection(TestConnections.For(server));
        await using var waiterConnection = new RedisConnection(TestConnections.For(server));
        await using var owner = new RedisDistributedLoadLock(ownerConnection);
        await using var waiter = new RedisDistributedLoadLock(waiterConnection, null, new RedisLoadLockOptions { PollInterval = TimeSpan.FromHours(1) }); // no polling: only the notification can wake it

        IAsyncDisposable? lease = await owner.TryAcquireAsync("k", CancellationToken.None);
        Assert.That(await waiter.TryAcquireAsync("k", CancellationToken.None), Is.Null);
        await waiter.Notifications!.WaitAsync(TestConnections.Guard);
        Task<bool> waiting = waiter.WaitForReleaseAsync("k", TimeSpan.FromHours(1), CancellationToken.None).AsTask();
        await Eventually.HoldsAsync(() => waiter.Waiting == 1, "the waiter is waiting");
        Assert.That(waiting.IsCompleted, Is.False, "the lock is held");

        await lease!.DisposeAsync();
        Assert.That(await waiting.WaitAsync(TestConnections.Guard), Is.True);
    }

    [Test]
    public async Task WaitForRelease_NoticesAnExpiredLeaseByPolling_AndTimesOutOnAHeldOne()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using var connection = new RedisConnection(TestConnections.For(server));
        await using var locks = new RedisDistributedLoadLock(connection, null, new RedisLoadLockOptions { PollInterval = TimeSpan.FromMilliseconds(20) });

        // An owner that died: no release, no notification, only the lease running out.
        await connection.ExecuteAsync(new RedisCommand("SET", "dead:__lock", "gone", "PX", 300));
        Assert.That(await locks.WaitForReleaseAsync("dead", TimeSpan.FromSeconds(10), CancellationToken.None).AsTask().WaitAsync(TestConnections.Guard), Is.True);

        await connection.ExecuteAsync(new RedisCommand("SET", "held:__lock", "forever"));
        var clock = Stopwatch.StartNew();
        Assert.That(await locks.WaitForReleaseAsync("held", TimeSpan.FromMilliseconds(200), CancellationToken.None), Is.False);
        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(190)));
    }

    [Test]
    public async Task ThreeNodes_500CallersEach_OnOneColdKey_WithTheLock_RunTheLoaderOnceAcrossTheFleet()
    {
        // One node holds the lock and loads; the other two wait for it in Redis.
        (string[] results, int loads) = await StampedeOnThreeNodesAsync(
            static o => o.DistributedLoadLock = true,
            static (nodes, loads) => loads == 1 && nodes.Sum(n => n.Lock.Waiting) == 2,
            "one loader running, two nodes waiting on the lock");

        Assert.That(results, Has.Length.EqualTo(3 * CallersPerNode).And.All.EqualTo("loaded"));
        Assert.That(loads, Is.EqualTo(1), "exactly one loader call across three nodes");
        TestContext.Progress.WriteLine($"lock on: {loads} loader call(s) for 3 x {CallersPerNode} callers");
    }

    [Test]
    public async Task ThreeNodes_500CallersEach_OnOneColdKey_WithoutTheLock_EachNodeLoadsOnce()
    {
        // Held until every node is loading: the worst case without the lock, one load per node.
        (string[] results, int loads) = await StampedeOnThreeNodesAsync(
            configure: null,
            static (_, loads) => loads == 3,
            "each node runs its own loader");

        Assert.That(results, Has.Length.EqualTo(3 * CallersPerNode).And.All.EqualTo("loaded"));
        Assert.That(loads, Is.EqualTo(3), "local coalescing only: one load per node");
        TestContext.Progress.WriteLine($"lock off: {loads} loader calls for 3 x {CallersPerNode} callers");
    }

    /// <summary>
    /// Three nodes on one server, <see cref="CallersPerNode"/> callers each on one cold key; the loader is held until
    /// <paramref name="heldUntil"/> holds, then released. Returns every caller's value and the loader calls.
    /// </summary>
    private static async Task<(string[] Results, int Loads)> StampedeOnThreeNodesAsync(Action<CoalescingCacheOptions>? configure, Func<Node[], int, bool> heldUntil, string what)
    {
        await using RedisServer server = await RedisServer.StartAsync();
        Node[] nodes = [await Node.StartAsync(server, configure), await Node.StartAsync(server, configure), await Node.StartAsync(server, configure)];
        try
        {
            int loads = 0;
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Func<CancellationToken, Task<string>> loader = async ct =>
            {
                Interlocked.Increment(ref loads);
                await gate.Task.WaitAsync(ct);
                return "loaded";
            };

            List<Task<string>> callers = [];
            foreach (Node node in nodes)
            {
                for (int i = 0; i < CallersPerNode; i++)
                {
                    callers.Add(node.Cache.GetOrLoadAsync("cold", loader).AsTask());
                }
            }

            await Eventually.HoldsAsync(() => heldUntil(nodes, Volatile.Read(ref loads)), what);
            gate.SetResult();
            string[] results = await Task.WhenAll(callers).WaitAsync(TestConnections.Guard);
            return (results, loads);
        }
        finally
        {
            foreach (Node node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    [Test]
    public async Task LockOwnerDiesMidLoad_AnotherNodeCompletesTheLoadAfterTheLease()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        static void Configure(CoalescingCacheOptions o) => o.DistributedLoadLockTimeout = TimeSpan.FromSeconds(30); // the lease, not the timeout, must end the wait
        static void ShortLease(ICoalescingCacheBuilder b) => b.WithRedisLoadLock(o =>
        {
            o.LeaseDuration = TimeSpan.FromSeconds(2);
            o.PollInterval = TimeSpan.FromMilliseconds(50);
        });
        Node owner = await Node.StartAsync(server, Configure, ShortLease);
        await using Node b = await Node.StartAsync(server, Configure, ShortLease);
        await using Node c = await Node.StartAsync(server, Configure, ShortLease);

        var ownerLoading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ownerDies = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<string> ownerCall = owner.Cache.GetOrLoadAsync("report", _ =>
        {
            ownerLoading.SetResult();
            return ownerDies.Task;
        }).AsTask();
        await ownerLoading.Task.WaitAsync(TestConnections.Guard);
        Assert.That(await server.CliAsync("EXISTS", "fleet:__cacheguard:lock:0::report:__lock"), Does.StartWith("1"), "the owner holds the lock");

        int survivorLoads = 0;
        Func<CancellationToken, Task<string>> loader = _ =>
        {
            Interlocked.Increment(ref survivorLoads);
            return Task.FromResult("done by a survivor");
        };
        List<Task<string>> callers = [];
        foreach (Node node in new[] { b, c })
        {
            for (int i = 0; i < CallersPerNode; i++)
            {
                callers.Add(node.Cache.GetOrLoadAsync("report", loader).AsTask());
            }
        }

        await Eventually.HoldsAsync(() => b.Lock.Waiting + c.Lock.Waiting == 2, "both survivors wait for the owner");

        // Kill the owner: its connection goes (no renewal, no release), then its loader fails.
        var killed = Stopwatch.StartNew();
        await owner.DisposeAsync();
        ownerDies.SetException(new InvalidOperationException("the owner's process died"));
        Assert.That(async () => await ownerCall, Throws.Exception, "the dead node's own caller fails, as its process would");
        Assert.That(survivorLoads, Is.Zero, "nobody loads while the dead owner's lease runs");

        string[] results = await Task.WhenAll(callers).WaitAsync(TestConnections.Guard);
        TimeSpan recovered = killed.Elapsed;
        Assert.That(results, Has.All.EqualTo("done by a survivor"));
        Assert.That(survivorLoads, Is.InRange(1, 2), "after the lease, the survivors load (each at most once)");
        Assert.That(recovered, Is.LessThan(TimeSpan.FromSeconds(10)), "within the lease plus a poll, far below the 30 s wait timeout");

        await using Node late = await Node.StartAsync(server, Configure, ShortLease);
        Assert.That(await late.Cache.GetOrLoadAsync<string>("report", static _ => throw new AssertionException("should come from L2")), Is.EqualTo("done by a survivor"));
        Assert.That(await b.Cache.GetOrLoadAsync<string>("report", static _ => throw new AssertionException("should come from L1")), Is.EqualTo("done by a survivor"));
        Assert.That(await c.Cache.GetOrLoadAsync<string>("report", static _ => throw new AssertionException("should come from L1")), Is.EqualTo("done by a survivor"));
        TestContext.Progress.WriteLine($"owner killed: survivors completed the load after {recovered.TotalMilliseconds:0} ms with {survivorLoads} loader call(s)");
    }

    [Test]
    public async Task RedisUnavailable_TheLockIsSkipped_CallersNeverFail_AndLocalCoalescingStillHolds()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using Node node = await Node.StartAsync(server, static o =>
        {
            o.DistributedLoadLock = true;
            o.DistributedCacheTimeout = TimeSpan.FromSeconds(1);
        });
        await server.KillAsync();

        int loads = 0;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var callers = new Task<string>[CallersPerNode];
        for (int i = 0; i < callers.Length; i++)
        {
            callers[i] = node.Cache.GetOrLoadAsync("cold", async ct =>
            {
                Interlocked.Increment(ref loads);
                await gate.Task.WaitAsync(ct);
                return "loaded without Redis";
            }).AsTask();
        }

        await Eventually.HoldsAsync(() => Volatile.Read(ref loads) == 1, "the loader runs without the lock");
        gate.SetResult();
        string[] results = await Task.WhenAll(callers).WaitAsync(TestConnections.Guard);
        Assert.That(results, Has.All.EqualTo("loaded without Redis"));
        Assert.That(loads, Is.EqualTo(1));
    }

    [Test]
    public void WithRedis_RegistersTheLock_ButLeavesItOff_AndWithRedisLoadLockTurnsItOn()
    {
        var off = new ServiceCollection();
        off.AddCoalescingCache().WithRedis("127.0.0.1:1");
        using ServiceProvider offProvider = off.BuildServiceProvider();
        Assert.That(offProvider.GetRequiredService<IOptionsMonitor<CoalescingCacheOptions>>().Get(string.Empty).DistributedLoadLock, Is.False);
        Assert.That(offProvider.GetKeyedService<RedisDistributedLoadLock>(string.Empty), Is.Not.Null);

        var on = new ServiceCollection();
        on.AddCoalescingCache().WithRedis("127.0.0.1:1").WithRedisLoadLock(o => o.LeaseDuration = TimeSpan.FromSeconds(5));
        using ServiceProvider onProvider = on.BuildServiceProvider();
        Assert.That(onProvider.GetRequiredService<IOptionsMonitor<CoalescingCacheOptions>>().Get(string.Empty).DistributedLoadLock, Is.True);
        Assert.That(onProvider.GetRequiredService<ICoalescingCache>(), Is.Not.Null);

        var tooShort = new RedisLoadLockOptions { LeaseDuration = TimeSpan.FromMilliseconds(10) };
        Assert.Throws<ArgumentOutOfRangeException>(tooShort.Validate);
    }
}
