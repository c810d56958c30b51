using System.Diagnostics;
using System.Globalization;
using CacheGuard;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>The Redis tier on a real three-master Redis Cluster: L2, batch reads across slots, tags, lock and backplane.</summary>
public class ClusterTests
{
    private const int CallersPerNode = 500;
    private RedisCluster _cluster = null!;

    [OneTimeSetUp]
    public async Task StartCluster() => _cluster = await RedisCluster.StartAsync();

    [OneTimeTearDown]
    public async Task StopCluster() => await _cluster.DisposeAsync();

    [Test]
    public async Task L2WritesAndBatchReads_SpreadOverEverySlotOwner_RoundTrip()
    {
        string instance = TestRedis.UniquePrefix("l2");
        await using Node writer = await Node.StartAsync(_cluster.Options(), instance);
        await using Node reader = await Node.StartAsync(_cluster.Options(), instance);
        string[] keys = [.. Enumerable.Range(0, 300).Select(i => "k" + i.ToString(CultureInfo.InvariantCulture))];
        foreach (string key in keys.Take(150))
        {
            await writer.Cache.SetAsync(key, "stored:" + key);
        }

        // The keys live on all three masters.
        int[] perNode = new int[_cluster.Nodes.Count];
        for (int i = 0; i < perNode.Length; i++)
        {
            perNode[i] = int.Parse((await _cluster.Nodes[i].CliAsync("DBSIZE")).Trim(), CultureInfo.InvariantCulture);
        }

        Assert.That(perNode, Has.All.GreaterThan(0), "entries on every master: " + string.Join(",", perNode));

        var asked = new List<IReadOnlyList<string>>();
        IReadOnlyDictionary<string, string> read = await reader.Cache.GetOrLoadManyAsync(keys, (missing, _) =>
        {
            asked.Add(missing);
            return Task.FromResult<IReadOnlyDictionary<string, string>>(missing.ToDictionary(k => k, k => "loaded:" + k));
        });

        Assert.That(read.Where(kv => kv.Value == "stored:" + kv.Key).Select(kv => kv.Key), Is.EquivalentTo(keys.Take(150)), "read from L2 across slots");
        Assert.That(asked, Has.Count.EqualTo(1));
        Assert.That(asked[0], Is.EquivalentTo(keys.Skip(150)));
        Assert.That(await reader.Cache.GetOrLoadAsync<string>("k7", static _ => throw new AssertionException("L1 hit expected")), Is.EqualTo("stored:k7"));
    }

    [Test]
    public async Task ThreeNodes_500CallersEach_OnOneColdKey_WithTheLock_RunTheLoaderOnce()
    {
        string instance = TestRedis.UniquePrefix("stampede");
        static void Configure(CoalescingCacheOptions o) => o.DistributedLoadLock = true;
        Node[] nodes = [await Node.StartAsync(_cluster.Options(), instance, Configure), await Node.StartAsync(_cluster.Options(), instance, Configure), await Node.StartAsync(_cluster.Options(), instance, Configure)];
        try
        {
            int loads = 0;
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            List<Task<string>> callers = [];
            foreach (Node node in nodes)
            {
                for (int i = 0; i < CallersPerNode; i++)
                {
                    callers.Add(node.Cache.GetOrLoadAsync("cold", async ct =>
                    {
                        Interlocked.Increment(ref loads);
                        await gate.Task.WaitAsync(ct);
                        return "loaded";
                    }).AsTask());
                }
            }

            await Eventually.HoldsAsync(() => Volatile.Read(ref loads) == 1 && nodes.Sum(n => n.Lock.Waiting) == 2, "one loader running, two nodes waiting on the lock");
            gate.SetResult();
            string[] results = await Task.WhenAll(callers).WaitAsync(TestRedis.Guard);
            Assert.That(results, Has.All.EqualTo("loaded"));
            Assert.That(loads, Is.EqualTo(1), "one loader call across three nodes on the cluster");
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
    public async Task ThreeLocks_RacingTryAcquireManyOverKeysOnEveryMaster_EachKeyIsTakenExactlyOnce()
    {
        string prefix = TestRedis.UniquePrefix("locks");
        ConnectionMultiplexer[] connections = [await ConnectAsync(), await ConnectAsync(), await ConnectAsync()];
        RedisDistributedLoadLock[] locks = [.. connections.Select(c => new RedisDistributedLoadLock(c, prefix))];
        try
        {
            string[] keys = [.. Enumerable.Range(0, 300).Select(i => "k" + i.ToString(CultureInfo.InvariantCulture))];
            IAsyncDisposable?[][] results = await Task.WhenAll(locks.Select(l => Task.Run(async () => await l.TryAcquireManyAsync(keys, CancellationToken.None))));
            Assert.That(results.Sum(r => r.Count(lease => lease is not null)), Is.EqualTo(keys.Length), "every key has exactly one owner");

            // The first waiter of a released key wakes on the notification published beside the key's master.
            IAsyncDisposable? held = results.Select(r => r[0]).Single(l => l is not null);
            RedisDistributedLoadLock other = locks[Array.FindIndex(results, r => r[0] is null)];
            Task<bool> waiting = other.WaitForReleaseAsync(keys[0], TimeSpan.FromSeconds(10), CancellationToken.None).AsTask();
            await held!.DisposeAsync();
            Assert.That(await waiting.WaitAsync(TestRedis.Guard), Is.True);
            foreach (IAsyncDisposable? lease in results.SelectMany(r => r).Where(l => l is not null && !ReferenceEquals(l, held)))
            {
                await lease!.DisposeAsync();
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
    public async Task Backplane_PropagatesAcrossTheCluster_Measured()
    {
        string instance = TestRedis.UniquePrefix("bp");
        await using Node a = await Node.StartAsync(_cluster.Options(), instance, build: static b => b.WithBackplane());
        await using Node b = await Node.StartAsync(_cluster.Options(), instance, build: static b => b.WithBackplane());
        await Task.WhenAll(a.Backplane.WhenSubscribed, b.Backplane.WhenSubscribed).WaitAsync(TestRedis.Guard);
        await a.Cache.SetAsync("price", "v0");
        Assert.That(await b.Cache.GetOrLoadAsync("price", static _ => Task.FromResult("v0")), Is.EqualTo("v0"));

        const int Updates = 200;
        var micros = new double[Updates];
        for (int i = 1; i <= Updates; i++)
        {
            string value = "v" + i.ToString(CultureInfo.InvariantCulture);
            long start = Stopwatch.GetTimestamp();
            await a.Cache.SetAsync("price", value);
            for (int poll = 0; poll < 1_000_000 && await b.Cache.GetOrLoadAsync<string>("price", static _ => throw new AssertionException("from L1 or L2")) != value; poll++)
            {
                Assert.That(Stopwatch.GetElapsedTime(start), Is.LessThan(TimeSpan.FromSeconds(5)), $"update {i} reached B");
                await Task.Yield();
            }

            micros[i - 1] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        Array.Sort(micros);
        TestContext.Progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cluster backplane propagation, {Updates} updates: p50 {micros[Updates / 2] / 1000:0.000} ms, p99 {micros[(Updates * 99 / 100) - 1] / 1000:0.000} ms"));
    }

    [Test]
    public async Task RemoveByTag_IsSeenThroughTheTagStampInL2_AndThroughTheBackplane()
    {
        string instance = TestRedis.UniquePrefix("tags");
        static void ViaStamps(CoalescingCacheOptions o) => o.TagCheckInterval = TimeSpan.FromMilliseconds(1);
        await using Node writer = await Node.StartAsync(_cluster.Options(), instance, ViaStamps, static b => b.WithBackplane());
        await using Node stampReader = await Node.StartAsync(_cluster.Options(), instance, ViaStamps); // no backplane: only the stamp in L2 can tell it
        await using Node backplaneReader = await Node.StartAsync(_cluster.Options(), instance, static o => o.TagCheckInterval = TimeSpan.FromHours(1), static b => b.WithBackplane());
        await Task.WhenAll(writer.Backplane.WhenSubscribed, backplaneReader.Backplane.WhenSubscribed).WaitAsync(TestRedis.Guard);
        var tagged = new CacheEntryOptions { Tags = ["orders"] };
        foreach (Node node in new[] { stampReader, backplaneReader })
        {
            foreach (string key in new[] { "o:1", "o:2", "o:3" })
            {
                Assert.That(await node.Cache.GetOrLoadAsync(key, static _ => Task.FromResult("first"), tagged), Is.EqualTo("first"));
            }
        }

        await writer.Cache.RemoveByTagAsync("orders");

        foreach (Node node in new[] { stampReader, backplaneReader })
        {
            foreach (string key in new[] { "o:1", "o:2", "o:3" })
            {
                await Eventually.HoldsAsync(async () => await node.Cache.GetOrLoadAsync(key, static _ => Task.FromResult("second"), tagged) == "second", $"{key} is invalidated on the {(node == stampReader ? "stamp" : "backplane")} reader");
            }
        }
    }

    [Test]
    public async Task Health_IsAvailable_OnTheCluster()
    {
        await using Node node = await Node.StartAsync(_cluster.Options(), TestRedis.UniquePrefix("health"));
        RedisCacheHealth health = RedisRegistration.GetTier(node.Provider, string.Empty).Health;
        await health.Attached.WaitAsync(TestRedis.Guard);
        Assert.That(health.IsAvailable, Is.True);
        Assert.That(node.Multiplexer.GetServers().Count(s => !s.IsReplica), Is.EqualTo(3), "the client sees three masters");
    }

    private Task<ConnectionMultiplexer> ConnectAsync() => ConnectionMultiplexer.ConnectAsync(_cluster.Options());
}
