using System.Globalization;
using System.Text.RegularExpressions;
using CacheGuard;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Redis.Tests;

/// <summary>CacheGuard's core with Redis as L2, registered through the DI extensions.</summary>
public partial class CoalescingCacheTests
{
    [Test]
    public async Task StampedeOnAColdKey_RunsTheLoaderOnce_AndReadsRedisOnce()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var services = new ServiceCollection();
        services.AddCoalescingCache().WithRedis(server.Configuration);
        await using ServiceProvider provider = services.BuildServiceProvider();
        ICoalescingCache cache = provider.GetRequiredService<ICoalescingCache>();
        await server.CliAsync("CONFIG", "RESETSTAT");

        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int loads = 0;
        var callers = new Task<string>[10_000];
        for (int i = 0; i < callers.Length; i++)
        {
            callers[i] = cache.GetOrLoadAsync("cold", async ct =>
            {
                Interlocked.Increment(ref loads);
                await gate.Task.WaitAsync(ct);
                return "loaded";
            }).AsTask();
        }

        gate.SetResult();
        string[] results = await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Multiple(async () =>
        {
            Assert.That(loads, Is.EqualTo(1));
            Assert.That(results, Has.All.EqualTo("loaded"));
            Assert.That(await CallsAsync(server, "hmget"), Is.EqualTo(1), "one Redis read for 10,000 callers");
        });
    }

    [Test]
    public async Task RedisOutage_CallersSeeNoExceptions_ValuesComeFromL1OrTheLoader_AndRedisIsUsedAgainAfterRestart()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var services = new ServiceCollection();
        services.AddCoalescingCache(o =>
        {
            o.DistributedCacheTimeout = TimeSpan.FromSeconds(1);
            o.DistributedCacheCircuitBreakerDuration = TimeSpan.FromMilliseconds(200); // the outage opens it; keep the test short
        }).WithRedis(o =>
        {
            o.ConfigurationOptions = TestConnections.For(server);
            o.InstanceName = "outage:";
        });
        await using ServiceProvider provider = services.BuildServiceProvider();
        ICoalescingCache cache = provider.GetRequiredService<ICoalescingCache>();
        RedisConnection connection = provider.GetRequiredKeyedService<RedisConnection>(string.Empty);
        var restored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.ConnectionRestored += (_, _) => restored.TrySetResult();

        Assert.That(await cache.GetOrLoadAsync("warm", static _ => Task.FromResult("warm-value")), Is.EqualTo("warm-value"));
        Assert.That(await server.CliAsync("EXISTS", "outage:warm"), Does.StartWith("1"), "the value reached Redis");

        await server.KillAsync();
        int loads = 0;
        var errors = new List<Exception>();
        for (int i = 0; i < 200; i++)
        {
            try
            {
                string warm = await cache.GetOrLoadAsync("warm", static _ => Task.FromResult("reloaded"));
                string cold = await cache.GetOrLoadAsync($"cold{i % 20}", _ =>
                {
                    Interlocked.Increment(ref loads);
                    return Task.FromResult("fresh");
                });
                await cache.SetAsync($"set{i}", i);
                await cache.RemoveAsync($"set{i}");
                Assert.That(warm, Is.EqualTo("warm-value"), "served from L1");
                Assert.That(cold, Is.EqualTo("fresh"));
            }
            catch (Exception ex) when (ex is not AssertionException)
            {
                errors.Add(ex);
            }
        }

        await cache.SetAsync("during", "written-in-the-outage");
        Assert.That(errors, Is.Empty, "no caller-visible exceptions during the outage");
        Assert.That(loads, Is.EqualTo(20), "each cold key was loaded once and then served from L1");

        await server.RestartAsync();
        await restored.Task.WaitAsync(TestConnections.Guard);
        Assert.That(await cache.GetOrLoadAsync("after", static _ => Task.FromResult("again")), Is.EqualTo("again"));

        // The outage opened the circuit breaker: once its period ends, an L2 call probes, closes it, and the writes
        // queued meanwhile (the one above, and the set during the outage) are replayed. Poll with a deadline.
        using var deadline = new CancellationTokenSource(TestConnections.Guard);
        while (!(await server.CliAsync("EXISTS", "outage:after")).StartsWith('1') || !(await server.CliAsync("EXISTS", "outage:during")).StartsWith('1'))
        {
            Assert.That(deadline.IsCancellationRequested, Is.False, "L2 writes resume after the restart, queued ones included");
            await cache.TryGetAsync<string>("probe");
            await Task.Delay(50);
        }
    }

    [Test]
    public async Task AddCacheGuardRedisCache_RegistersTheDistributedCache_AsASingletonDisposedWithTheContainer()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var services = new ServiceCollection();
        services.AddDistributedMemoryCache();
        services.AddCacheGuardRedisCache(server.Configuration, instanceName: "di:");
        RedisConnection connection;
        await using (ServiceProvider provider = services.BuildServiceProvider())
        {
            IDistributedCache cache = provider.GetRequiredService<IDistributedCache>();
            Assert.That(cache, Is.TypeOf<RedisDistributedCache>());
            Assert.That(provider.GetRequiredService<IDistributedCache>(), Is.SameAs(cache));
            await cache.SetStringAsync("k", "v");
            Assert.That((await server.CliAsync("HGET", "di:k", "data")).Trim(), Is.EqualTo("v"));
            connection = provider.GetRequiredService<RedisConnection>();
            Assert.That(connection.IsConnected, Is.True);
        }

        Assert.That(connection.IsConnected, Is.False);
        Assert.ThrowsAsync<ObjectDisposedException>(async () => await connection.ExecuteAsync(new RedisCommand("PING")));
    }

    [Test]
    public void Registration_InvalidConfigurationString_FailsWhenRegistering()
    {
        var services = new ServiceCollection();
        var ex = Assert.Throws<ArgumentException>(() => services.AddCacheGuardRedisCache("localhost:notaport"));
        Assert.That(ex!.Message, Does.Contain("'localhost:notaport'"));
        Assert.Throws<ArgumentException>(() => services.AddCoalescingCache().WithRedis("localhost,abortConnect=perhaps"));
    }

    [Test]
    public async Task BatchOverRedis_OnePipelinedRead_ThenOneLoaderCallForTheKeysRedisDidNotHave()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var services = new ServiceCollection();
        services.AddCoalescingCache().WithRedis(server.Configuration);
        await using ServiceProvider provider = services.BuildServiceProvider();
        ICoalescingCache cache = provider.GetRequiredService<ICoalescingCache>();
        Assert.That(provider.GetRequiredKeyedService<RedisDistributedCache>(string.Empty), Is.InstanceOf<IBatchDistributedCache>());

        var keys = Enumerable.Range(0, 1000).Select(i => $"batch:{i}").ToArray();
        var services2 = new ServiceCollection();
        services2.AddCoalescingCache().WithRedis(server.Configuration);
        await using (ServiceProvider otherNode = services2.BuildServiceProvider())
        {
            ICoalescingCache writer = otherNode.GetRequiredService<ICoalescingCache>();
            foreach (string key in keys.Take(200))
            {
                await writer.SetAsync(key, "from-redis");
            }
        }

        await server.CliAsync("CONFIG", "RESETSTAT");
        var asked = new List<IReadOnlyList<string>>();
        IReadOnlyDictionary<string, string> result = await cache.GetOrLoadManyAsync(keys, (missing, _) =>
        {
            asked.Add(missing);
            return Task.FromResult<IReadOnlyDictionary<string, string>>(missing.ToDictionary(k => k, _ => "from-loader"));
        });

        Assert.That(result, Has.Count.EqualTo(1000));
        Assert.That(result.Count(kv => kv.Value == "from-redis"), Is.EqualTo(200));
        Assert.That(asked, Has.Count.EqualTo(1));
        Assert.That(asked[0], Has.Count.EqualTo(800));
        Assert.That(await CallsAsync(server, "hmget"), Is.EqualTo(1001), "one HMGET per key, sent together by GetManyAsync, and the first read of the \"*\" stamp");
    }

    private static async Task<long> CallsAsync(RedisServer server, string command)
    {
        string stats = await server.CliAsync("INFO", "commandstats");
        Match match = CommandCalls().Match(stats.Replace("cmdstat_" + command + ":", "\nTARGET:", StringComparison.Ordinal));
        return match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    [GeneratedRegex(@"\nTARGET:calls=(\d+)")]
    private static partial Regex CommandCalls();
}
