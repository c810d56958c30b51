using CacheGuard;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Redis.Tests;

/// <summary>CacheGuard's core with Microsoft's RedisCache as L2, registered by WithRedis.</summary>
public class CoalescingCacheTests
{
    [Test]
    public async Task StampedeOnAColdKey_RunsTheLoaderOnce_AndReadsRedisOnce()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var services = new ServiceCollection();
        services.AddCoalescingCache().WithRedis(server.Configuration);
        await using ServiceProvider provider = services.BuildServiceProvider();
        ICoalescingCache cache = provider.GetRequiredService<ICoalescingCache>();
        Assert.That(await cache.GetOrLoadAsync("warm-up", static _ => Task.FromResult(0)), Is.Zero);
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

        Assert.That(loads, Is.EqualTo(1));
        Assert.That(results, Has.All.EqualTo("loaded"));
        // RedisCache's buffered read of one entry is HMGET (metadata) plus HGET (data), pipelined.
        Assert.That(await CommandStats.CallsAsync(server, "hmget"), Is.EqualTo(1), "one Redis read for 10,000 callers");
        Assert.That(await CommandStats.CallsAsync(server, "hset") + await CommandStats.CallsAsync(server, "hmset"), Is.EqualTo(1), "one Redis write");
    }

    [Test]
    public async Task BatchOverRedis_OnePipelinedRead_ThenOneLoaderCallForTheKeysRedisDidNotHave()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var services = new ServiceCollection();
        services.AddCoalescingCache().WithRedis(server.Configuration);
        await using ServiceProvider provider = services.BuildServiceProvider();
        ICoalescingCache cache = provider.GetRequiredService<ICoalescingCache>();

        string[] keys = [.. Enumerable.Range(0, 1000).Select(i => $"batch:{i}")];
        var otherNode = new ServiceCollection();
        otherNode.AddCoalescingCache().WithRedis(server.Configuration);
        await using (ServiceProvider other = otherNode.BuildServiceProvider())
        {
            ICoalescingCache writer = other.GetRequiredService<ICoalescingCache>();
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
        Assert.That(await CommandStats.CallsAsync(server, "hmget"), Is.EqualTo(1001), "one HMGET per key, sent together by the batch reader, and RedisCache's one read of the \"*\" stamp");
        Assert.That(await CommandStats.CallsAsync(server, "hget"), Is.Zero, "no per-key RedisCache reads");
    }
}
