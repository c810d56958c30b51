using System.Diagnostics;
using System.Globalization;
using CacheGuard;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>The distributed load lock: one load per key across nodes sharing one real redis-server.</summary>
public class DistributedLoadLockTests
{
    private const int CallersPerNode = 500;

    [Test]
    public async Task TryAcquire_IsExclusive_AndOnlyTheOwnerCanRelease()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        await using ConnectionMultiplexer connection = await TestRedis.ConnectAsync(server);
        IDatabase redis = connection.GetDatabase();
        string prefix = TestRedis.UniquePrefix("lock");
        await using var locks = new RedisDistributedLoadLock(connection, prefix);
        string lockKey = locks.LockKey("k");
        Assert.That(lockKey, Is.EqualTo(prefix + "k"), "the key the cache passes (already in its own key space), after the instance name");

        IAsyncDisposable? held = await locks.TryAcquireAsync("k", CancellationToken.None);
        Assert.That(held, Is.Not.Null);
        Assert.That(await locks.TryAcquireAsync("k", CancellationToken.None), Is.Null, "held by another owner");
        TimeSpan? ttl = await redis.KeyTimeToLiveAsync(lockKey);
        Assert.That(ttl, Is.Not.Null.And.InRange(TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(5)), "SET NX PX with the 5 s default lease");

        await held!.DisposeAsync();
        Assert.That(await redis.KeyExistsAsync(lockKey), Is.False, "released");

        // A lease that expired and was taken by another node must not release the new owner's lock.
        IAsyncDisposable? stale = await locks.TryAcquireAsync("k", CancellationToken.None);
        await redis.StringSetAsync(lockKey, "someone-else", TimeSpan.FromSeconds(30));
        await stale!.DisposeAsync();
        Assert.That((string?)await redis.StringGetAsync(lockKey), Is.EqualTo("someone-else"));
    }

    [Test]
    public async Task TryAcquireMany_TakesTheFreeKeys_InOnePipeline_AndLeavesHeldOnesAlone()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using ConnectionMultiplexer connection = await TestRedis.ConnectAsync(server);
        await using var mine = new RedisDistributedLoadLock(connection, "app:");
        await using var other = new RedisDistributedLoadLock(connection, "app:");
        IAsyncDisposable? theirs = await other.TryAcquireAsync("k3", CancellationToken.None);
        string[] keys = [.. Enumerable.Range(0, 100).Select(i => "k" + i.ToString(CultureInfo.InvariantCulture))];
        await server.CliAsync("CONFIG", "RESETSTAT");

        IAsyncDisposable?[] leases = await mine.TryAcquireManyAsync(keys, CancellationToken.None);

        Assert.That(leases.Select((l, i) => (l is null, keys[i])).Where(x => x.Item1).Select(x => x.Item2), Is.EqualTo(new[] { "k3" }), "only the key another owner holds is refused");
        Assert.That(await CommandStats.CallsAsync(server, "set"), Is.EqualTo(100), "one SET NX PX per key, sent as one batch");
        IAsyncDisposable?[] again = await other.TryAcquireManyAsync(keys, CancellationToken.None);
        Assert.That(again, Has.All.Null, "every key is held now");
        foreach (IAsyncDisposable? lease in leases)
        {
            await (lease?.DisposeAsync() ?? ValueTask.CompletedTask);
        }

        Assert.That((long)await connection.GetDatabase().ExecuteAsync("DBSIZE"), Is.EqualTo(1), "released, except the other owner's k3");
        await theirs!.DisposeAsync();
    }

    [Test]
    public async Task HeldLease_IsExtendedEveryThirdOfTheLease_UntilReleased_AndLossIsLogged()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        await using ConnectionMultiplexer connection = await TestRedis.ConnectAsync(server);
        IDatabase redis = connection.GetDatabase();
        string prefix = TestRedis.UniquePrefix("renew");
        var clock = new FakeTimeProvider();
        var logs = new CapturingLoggerProvider();
        await using var locks = new RedisDistributedLoadLock(
            connection, prefix, new RedisLoadLockOptions { LeaseDuration = TimeSpan.FromSeconds(30) }, new Microsoft.Extensions.Logging.Logger<RedisDistributedLoadLock>(new Microsoft.Extensions.Logging.LoggerFactory([logs])), clock);
        IAsyncDisposable? lease = await locks.TryAcquireAsync("long", CancellationToken.None);
        Assert.That(lease, Is.Not.Null);
        string lockKey = locks.LockKey("long");

        // Stand in for 25 s of a long load: Redis's TTL runs down while the lock's clock says a renewal is due.
        await redis.KeyExpireAsync(lockKey, TimeSpan.FromSeconds(5));
        clock.Advance(TimeSpan.FromSeconds(10));
        try
        {
            await Eventually.HoldsAsync(async () => await redis.KeyTimeToLiveAsync(lockKey) > TimeSpan.FromSeconds(20), "the renewal restored the 30 s lease");
        }
        catch (AssertionException)
        {
            TestContext.Out.WriteLine($"armed timers: {clock.ArmedTimers}; logs: " + string.Join(" | ", logs.Entries.Select(e => e.Message + " " + e.Exception)));
            throw;
        }

        // Taken over (its lease expired and another node won it): the renewal notices, logs, and stops.
        await redis.StringSetAsync(lockKey, "other", TimeSpan.FromSeconds(5));
        clock.Advance(TimeSpan.FromSeconds(10));
        await Eventually.HoldsAsync(() => logs.Count(Log.LoadLockLostId) == 1, "the lost lease is logged");
        Assert.That(await redis.KeyTimeToLiveAsync(lockKey), Is.LessThanOrEqualTo(TimeSpan.FromSeconds(5)), "never extends another owner's lock");
        await lease!.DisposeAsync();
        Assert.That((string?)await redis.StringGetAsync(lockKey), Is.EqualTo("other"));
    }

    [Test]
    public async Task WaitForRelease_WakesOnTheOwnersReleaseNotification()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        await using ConnectionMultiplexer ownerConnection = await TestRedis.ConnectAsync(server);
        await using ConnectionMultiplexer waiterConnection = await TestRedis.ConnectAsync(server);
        string prefix = TestRedis.UniquePrefix("notify");
        await using var owner = new RedisDistributedLoadLock(ownerConnection, prefix);
        await using var waiter = new RedisDistributedLoadLock(waiterConnection, prefix, new RedisLoadLockOptions { PollInterval = TimeSpan.FromHours(1) }); // no checks: only the notification can wake it

        IAsyncDisposable? lease = await owner.TryAcquireAsync("k", CancellationToken.None);
        Assert.That(await waiter.TryAcquireAsync("k", CancellationToken.None), Is.Null);
        await waiter.Notifications!.WaitAsync(TestRedis.Guard);
        Task<bool> waiting = waiter.WaitForReleaseAsync("k", TimeSpan.FromHours(1), CancellationToken.None).AsTask();
        await Eventually.HoldsAsync(() => waiter.Waiting == 1, "the waiter is waiting");
        Assert.That(waiting.IsCompleted, Is.False, "the lock is held");

        await lease!.DisposeAsync();
        Assert.That(await waiting.WaitAsync(TestRedis.Guard), Is.True);
    }

    [Test]
    public async Task WaitForRelease_NoticesAnExpiredLeaseByItsCheck_AndTimesOutOnAHeldOne()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        await using ConnectionMultiplexer connection = await TestRedis.ConnectAsync(server);
        IDatabase redis = connection.GetDatabase();
        string prefix = TestRedis.UniquePrefix("expire");
        await using var locks = new RedisDistributedLoadLock(connection, prefix, new RedisLoadLockOptions { PollInterval = TimeSpan.FromMilliseconds(20) });

        // An owner that died: no release, no notification, only the lease running out.
        await redis.StringSetAsync(locks.LockKey("dead"), "gone", TimeSpan.FromMilliseconds(300));
        Assert.That(await locks.WaitForReleaseAsync("dead", TimeSpan.FromSeconds(10), CancellationToken.None).AsTask().WaitAsync(TestRedis.Guard), Is.True);

        await redis.StringSetAsync(locks.LockKey("held"), "forever");
        var clock = Stopwatch.StartNew();
        Assert.That(await locks.WaitForReleaseAsync("held", TimeSpan.FromMilliseconds(200), CancellationToken.None), Is.False);
        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(190)));
    }

    [Test]
    public async Task ThreeLocks_RacingTryAcquireManyOverTheSameKeys_EachKeyIsTakenExactlyOnce()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        string prefix = TestRedis.UniquePrefix("race");
        ConnectionMultiplexer[] connections = [await TestRedis.ConnectAsync(server), await TestRedis.ConnectAsync(server), await TestRedis.ConnectAsync(server)];
        RedisDistributedLoadLock[] locks = [.. connections.Select(c => new RedisDistributedLoadLock(c, prefix))];
        try
        {
            string[] keys = [.. Enumerable.Range(0, 300).Select(i => "k" + i.ToString(CultureInfo.InvariantCulture))];
            IAsyncDisposable?[][] results = await Task.WhenAll(locks.Select(l => Task.Run(async () =>
                await l.TryAcquireManyAsync([.. keys.OrderBy(_ => Random.Shared.Next())], CancellationToken.None))));
            int taken = results.Sum(r => r.Count(lease => lease is not null));
            Assert.That(taken, Is.EqualTo(keys.Length), "every key has exactly one owner across the three");
            foreach (IAsyncDisposable? lease in results.SelectMany(r => r))
            {
                await (lease?.DisposeAsync() ?? ValueTask.CompletedTask);
            }
        }
        finally
        {
            foreach (RedisDistributedLoadLock l in locks)
            {
                await l.DisposeAsync();
            }

            foreach (ConnectionMultiplexer c in connections)
            {
                await c.DisposeAsync();
            }
        }
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
            string[] results = await Task.WhenAll(callers).WaitAsync(TestRedis.Guard);
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
        await ownerLoading.Task.WaitAsync(TestRedis.Guard);
        Assert.That(await server.CliAsync("EXISTS", owner.Lock.LockKey("__cacheguard:lock:0::report")), Does.StartWith("1"), "the owner holds the lock");

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

        string[] results = await Task.WhenAll(callers).WaitAsync(TestRedis.Guard);
        TimeSpan recovered = killed.Elapsed;
        Assert.That(results, Has.All.EqualTo("done by a survivor"));
        Assert.That(survivorLoads, Is.EqualTo(1), "after the lease, the survivor that takes the lock over loads; the other waits for its value");
        Assert.That(recovered, Is.LessThan(TimeSpan.FromSeconds(10)), "within the lease plus a check, far below the 30 s wait timeout");

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
        string[] results = await Task.WhenAll(callers).WaitAsync(TestRedis.Guard);
        Assert.That(results, Has.All.EqualTo("loaded without Redis"));
        Assert.That(loads, Is.EqualTo(1));
    }

    [Test]
    public void WithRedis_RegistersTheLock_ButLeavesItOff_AndWithRedisLoadLockTurnsItOn()
    {
        var off = new ServiceCollection();
        off.AddCoalescingCache().WithRedis("127.0.0.1:1,connectTimeout=200");
        using ServiceProvider offProvider = off.BuildServiceProvider();
        Assert.That(offProvider.GetRequiredService<IOptionsMonitor<CoalescingCacheOptions>>().Get(string.Empty).DistributedLoadLock, Is.False);
        Assert.That(offProvider.GetKeyedService<RedisDistributedLoadLock>(string.Empty), Is.Not.Null);

        var on = new ServiceCollection();
        on.AddCoalescingCache().WithRedis("127.0.0.1:1,connectTimeout=200").WithRedisLoadLock(o => o.LeaseDuration = TimeSpan.FromSeconds(5));
        using ServiceProvider onProvider = on.BuildServiceProvider();
        Assert.That(onProvider.GetRequiredService<IOptionsMonitor<CoalescingCacheOptions>>().Get(string.Empty).DistributedLoadLock, Is.True);
        Assert.That(onProvider.GetRequiredService<ICoalescingCache>(), Is.Not.Null);

        var tooShort = new RedisLoadLockOptions { LeaseDuration = TimeSpan.FromMilliseconds(10) };
        Assert.Throws<ArgumentOutOfRangeException>(tooShort.Validate);
    }
}
