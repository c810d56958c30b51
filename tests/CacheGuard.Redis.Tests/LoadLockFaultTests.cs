using System.Diagnostics;
using System.Globalization;
using CacheGuard;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>The load lock under faults (issue 15): lost releases, a paused server, an owner cut off mid-load.</summary>
public class LoadLockFaultTests
{
    private const int CallersPerNode = 200;

    [Test]
    public async Task ReleaseThatFailsWhileDisconnected_IsRetriedWhenTheConnectionIsBack_LongBeforeTheLeaseEnds()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        await using var proxy = new TcpProxy(server.Port);
        await using ConnectionMultiplexer ownerConnection = await ConnectThroughAsync(proxy);
        await using ConnectionMultiplexer observer = await TestRedis.ConnectAsync(server);
        var logs = new CapturingLoggerProvider();
        string prefix = TestRedis.UniquePrefix("retry");
        await using var locks = new RedisDistributedLoadLock(
            ownerConnection, prefix, new RedisLoadLockOptions { LeaseDuration = TimeSpan.FromSeconds(60) }, new Microsoft.Extensions.Logging.Logger<RedisDistributedLoadLock>(new Microsoft.Extensions.Logging.LoggerFactory([logs])));
        IAsyncDisposable? lease = await locks.TryAcquireAsync("k", CancellationToken.None);
        Assert.That(lease, Is.Not.Null);

        proxy.Cut();
        await Eventually.HoldsAsync(() => !ownerConnection.IsConnected, "the owner sees its connection gone");
        await lease!.DisposeAsync(); // the owner's load is done, but Redis cannot be told
        Assert.That(locks.UnreleasedCount, Is.EqualTo(1), "the release is kept for a retry");
        Assert.That(await observer.GetDatabase().KeyExistsAsync(locks.LockKey("k")), Is.True, "still locked in Redis");
        Assert.That(logs.Count(Log.LoadLockReleaseFailedId), Is.EqualTo(1));

        var back = Stopwatch.StartNew();
        proxy.Restore();
        await Eventually.HoldsAsync(async () => !await observer.GetDatabase().KeyExistsAsync(locks.LockKey("k")), "the retried release deletes the lock");
        TestContext.Progress.WriteLine($"lost release retried: the lock was gone {back.ElapsedMilliseconds} ms after the connection was allowed back (lease 60 s)");
        Assert.That(back.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "retried on reconnect, not left to the 60 s lease");
        await Eventually.HoldsAsync(() => logs.Count(Log.LoadLockReleaseRetriedId) == 1, "the retried release is logged once");
        Assert.That(locks.UnreleasedCount, Is.Zero);
    }

    [Test]
    public async Task AttemptsAbandonedWhileTheServerIsPaused_DoNotLeaveALockNobodyOwns_WhenTheServerRunsThem()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using ConnectionMultiplexer connection = await TestRedis.ConnectAsync(server);
        await using ConnectionMultiplexer observer = await TestRedis.ConnectAsync(server);
        string prefix = TestRedis.UniquePrefix("abandoned");
        await using var locks = new RedisDistributedLoadLock(
            connection, prefix, new RedisLoadLockOptions { LeaseDuration = TimeSpan.FromSeconds(60) }, Microsoft.Extensions.Logging.Abstractions.NullLogger<RedisDistributedLoadLock>.Instance);

        await server.SuspendAsync();
        using (var giveUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
        {
            Assert.That(async () => await locks.TryAcquireAsync("single", giveUp.Token), Throws.InstanceOf<OperationCanceledException>());
        }

        using (var giveUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
        {
            Assert.That(async () => await locks.TryAcquireManyAsync(["a", "b"], giveUp.Token), Throws.InstanceOf<OperationCanceledException>());
        }

        var resumed = Stopwatch.StartNew();
        await server.ResumeAsync();
        IDatabase db = observer.GetDatabase();
        await Eventually.HoldsAsync(
            async () => !await db.KeyExistsAsync(locks.LockKey("single")) && !await db.KeyExistsAsync(locks.LockKey("a")) && !await db.KeyExistsAsync(locks.LockKey("b")),
            "the abandoned attempts ran on resuming, took the locks, and were released");
        TestContext.Progress.WriteLine($"abandoned attempts: locks gone {resumed.ElapsedMilliseconds} ms after resume (lease 60 s)");
        Assert.That(resumed.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)), "released by their tokens, not left to the 60 s lease");
        IAsyncDisposable? lease = await locks.TryAcquireAsync("single", CancellationToken.None);
        Assert.That(lease, Is.Not.Null, "the key can be locked again");
        await lease!.DisposeAsync();
    }

    [Test]
    public async Task ServerPausedWhileAnOwnerLoads_AfterResume_WaitersGetTheOwnersValueWithinTheBound_WithOneLoad()
    {
        await using RedisServer server = await RedisServer.StartAsync();

        // The owner's write must outlast the 3 s pause, as the scenario says ("its write and release wait in the
        // socket"). With a shorter DistributedCacheTimeout the write times out, and the owner queues a removal mark
        // behind it (a late load write may land over a newer one); that mark, replayed on resume, takes the owner's
        // value out again and a waiter loads once more: safe, but another scenario (SoakFindingsTests covers it).
        static void Configure(CoalescingCacheOptions o)
        {
            o.DistributedLoadLock = true;
            o.DistributedCacheTimeout = TimeSpan.FromSeconds(6);
        }

        var finished = new System.Collections.Concurrent.ConcurrentQueue<long>();
        Node[] nodes = [await Node.StartAsync(server, Configure), await Node.StartAsync(server, Configure), await Node.StartAsync(server, Configure)];
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
                    callers.Add(Timed(node.Cache.GetOrLoadAsync("cold", loader).AsTask()));
                }
            }

            await Eventually.HoldsAsync(() => Volatile.Read(ref loads) == 1 && nodes.Sum(n => n.Lock.Waiting) == 2, "one owner loading, two nodes waiting");
            await server.SuspendAsync();
            gate.SetResult(); // the owner finishes while Redis is frozen: its write and release wait in the socket
            await Task.Delay(TimeSpan.FromSeconds(3)); // the pause itself (not an assertion)
            long resumed = Stopwatch.GetTimestamp();
            await server.ResumeAsync();
            string[] results = await Task.WhenAll(callers).WaitAsync(TestRedis.Guard);

            double[] afterResume = [.. finished.Select(t => Stopwatch.GetElapsedTime(resumed, t).TotalMilliseconds).Where(ms => ms > 0).Order()];
            double worst = afterResume.Length == 0 ? 0 : afterResume[^1];
            string report = string.Create(CultureInfo.InvariantCulture,
                $"pause 3 s with an owner mid-load: {afterResume.Length} waiting callers finished after the resume, p50 {Percentile(afterResume, 50):0.0} ms, p99 {Percentile(afterResume, 99):0.0} ms, max {worst:0.0} ms; loads {loads}");
            TestContext.Progress.WriteLine(report);
            Assert.That(results, Has.All.EqualTo("loaded"));
            Assert.That(loads, Is.EqualTo(1), "nobody loads beside the live owner");
            Assert.That(worst, Is.LessThan(2_000), "waiters resume as soon as Redis answers, not after a lease or the 10 s lock timeout");
        }
        finally
        {
            foreach (Node node in nodes)
            {
                await node.DisposeAsync();
            }
        }

        async Task<string> Timed(Task<string> call)
        {
            string value = await call;
            finished.Enqueue(Stopwatch.GetTimestamp());
            return value;
        }
    }

    [Test]
    public async Task OwnerCutOffFromRedisMidLoad_AnotherNodeTakesOverAfterTheLease()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using var proxy = new TcpProxy(server.Port);
        static void ShortLease(ICoalescingCacheBuilder b) => b.WithRedisLoadLock(o => o.LeaseDuration = TimeSpan.FromSeconds(2));
        static void Configure(CoalescingCacheOptions o) => o.DistributedLoadLockTimeout = TimeSpan.FromSeconds(30); // the lease, not the timeout, must end the wait
        await using Node owner = await Node.StartAsync(TestRedis.Options(server, o => Redirect(o, proxy)), "fleet:", Configure, ShortLease);
        await using Node b = await Node.StartAsync(server, Configure, ShortLease);
        await using Node c = await Node.StartAsync(server, Configure, ShortLease);

        var ownerLoading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ownerGate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<string> ownerCall = owner.Cache.GetOrLoadAsync("report", _ =>
        {
            ownerLoading.SetResult();
            return ownerGate.Task;
        }).AsTask();
        await ownerLoading.Task.WaitAsync(TestRedis.Guard);

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
        var cut = Stopwatch.StartNew();
        proxy.Cut(); // the owner is alive but cannot renew its lease
        string[] results = await Task.WhenAll(callers).WaitAsync(TestRedis.Guard);
        TimeSpan recovered = cut.Elapsed;
        TestContext.Progress.WriteLine($"owner cut off: survivors completed the load after {recovered.TotalMilliseconds:0} ms (lease 2 s) with {survivorLoads} loader call(s)");
        Assert.That(results, Has.All.EqualTo("done by a survivor"));
        Assert.That(survivorLoads, Is.EqualTo(1), "after the lease, the survivor that takes the lock over loads; the other waits for its value");
        Assert.That(recovered, Is.GreaterThan(TimeSpan.FromSeconds(1)), "nobody takes over while the lease may still be renewed");
        Assert.That(recovered, Is.LessThan(TimeSpan.FromSeconds(10)), "within the lease plus a check, far below the 30 s wait timeout");

        ownerGate.SetResult("late owner value");
        Assert.That(await ownerCall.WaitAsync(TestRedis.Guard), Is.EqualTo("late owner value"), "the cut-off owner still answers its own callers");
    }

    [Test]
    public async Task ThreeNodes_MixedSinglesAndBatches_OnColdKeys_LoadEachKeyExactlyOnce()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        static void Configure(CoalescingCacheOptions o) => o.DistributedLoadLock = true;
        Node[] nodes = [await Node.StartAsync(server, Configure), await Node.StartAsync(server, Configure), await Node.StartAsync(server, Configure)];
        try
        {
            var loads = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
            string[] keys = [.. Enumerable.Range(0, 200).Select(i => "m" + i.ToString(CultureInfo.InvariantCulture))];
            var work = new List<Task>();
            for (int round = 0; round < 3; round++)
            {
                foreach (Node node in nodes)
                {
                    foreach (string[] chunk in keys.OrderBy(_ => Random.Shared.Next()).Chunk(20))
                    {
                        work.Add(node.Cache.GetOrLoadManyAsync(chunk, (missing, _) =>
                        {
                            foreach (string key in missing)
                            {
                                loads.AddOrUpdate(key, 1, static (_, n) => n + 1);
                            }

                            return Task.FromResult<IReadOnlyDictionary<string, string>>(missing.ToDictionary(k => k, k => "v" + k));
                        }).AsTask());
                        work.Add(node.Cache.GetOrLoadAsync(chunk[0], _ =>
                        {
                            loads.AddOrUpdate(chunk[0], 1, static (_, n) => n + 1);
                            return Task.FromResult("v" + chunk[0]);
                        }).AsTask());
                    }
                }
            }

            await Task.WhenAll(work).WaitAsync(TestRedis.Guard);
            TestContext.Progress.WriteLine($"mixed singles and batches, 3 nodes, {keys.Length} cold keys: {loads.Values.Sum()} loads, {loads.Count(kv => kv.Value > 1)} keys loaded more than once");
            Assert.That(loads.Keys, Is.EquivalentTo(keys));
            Assert.That(loads.Where(kv => kv.Value != 1).Select(kv => $"{kv.Key}: {kv.Value}"), Is.Empty, "one load per key across the fleet");
        }
        finally
        {
            foreach (Node node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    private static async Task<ConnectionMultiplexer> ConnectThroughAsync(TcpProxy proxy)
    {
        RedisServer server = await SharedRedis.PlainAsync();
        return await TestRedis.ConnectAsync(server, o => Redirect(o, proxy));
    }

    private static void Redirect(ConfigurationOptions options, TcpProxy proxy)
    {
        options.EndPoints.Clear();
        options.EndPoints.Add("127.0.0.1", proxy.Port);
    }

    private static double Percentile(double[] sorted, int percentile) =>
        sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(sorted.Length * percentile / 100.0) - 1, 0, sorted.Length - 1)];
}
