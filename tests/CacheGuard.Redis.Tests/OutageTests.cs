using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using CacheGuard;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// Redis stopped, paused and restarted under a cache on default settings (breaker included): callers never fail, a miss
/// costs its loader and not an L2 timeout, and L2 is used again within seconds of Redis answering. Figures are printed.
/// </summary>
public class OutageTests
{
    private const int Misses = 200;

    [Test]
    public async Task RedisStopped_MissesSkipL2_ThenWritesReachRedisWithinSecondsOfTheRestart_QueuedOnesIncluded()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var logs = new CapturingLoggerProvider();
        await using ServiceProvider provider = Provider(server, logs);
        ICoalescingCache cache = provider.GetRequiredService<ICoalescingCache>();
        RedisCacheHealth health = RedisRegistration.GetTier(provider, string.Empty).Health;
        Assert.That(await cache.GetOrLoadAsync("warm", static _ => Task.FromResult("warm-value")), Is.EqualTo("warm-value"));
        Assert.That((await server.CliAsync("EXISTS", "outage:warm")).Trim(), Is.EqualTo("1"), "the value reached Redis");

        await server.KillAsync();
        double[] micros = await TimeMissesAsync(cache, "down");
        await cache.SetAsync("during", "written-in-the-outage");
        Assert.That(health.IsAvailable, Is.False);
        Assert.That(await cache.GetOrLoadAsync<string>("warm", static _ => throw new AssertionException("L1 should serve it")), Is.EqualTo("warm-value"));

        await server.RestartAsync();
        var back = Stopwatch.StartNew();
        TimeSpan written = await UntilAWriteLandsAsync(server, cache);
        await Eventually.HoldsAsync(async () => (await server.CliAsync("EXISTS", "outage:during")).Trim() == "1", "the write queued in the outage is replayed");
        TimeSpan replayed = back.Elapsed;

        Report("stopped", micros, written, replayed);
        var warnings = logs.Entries.Where(e => e.Level >= LogLevel.Warning).ToList();
        Assert.That(warnings.Where(e => e.Category == "CacheGuard.Redis").Select(e => e.Id.Id), Is.EqualTo(new[] { Log.RedisUnavailableId, Log.RedisAvailableId }),
            "the Redis tier logs one warning when Redis goes and one when it is back; its per-event detail is Debug");
        TestContext.Progress.WriteLine($"warnings over the whole outage: {string.Join(", ", warnings.Select(e => $"{e.Category} {e.Id.Id}"))}");

        Assert.That(Percentile(micros, 99), Is.LessThan(50_000), "p99 per miss during the outage: the loader's time, not an L2 timeout");
        Assert.That(written, Is.LessThan(TimeSpan.FromSeconds(5)), "writes reach Redis within 5 s of its return, with the default breaker");
    }

    [Test]
    public async Task RedisPaused_CallersNeverFail_MissesSkipL2OnceTheHeartbeatNotices_AndL2IsUsedAgainAfterTheResume()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var logs = new CapturingLoggerProvider();
        await using ServiceProvider provider = Provider(server, logs);
        ICoalescingCache cache = provider.GetRequiredService<ICoalescingCache>();
        RedisCacheHealth health = RedisRegistration.GetTier(provider, string.Empty).Health;
        Assert.That(await cache.GetOrLoadAsync("warm", static _ => Task.FromResult("warm-value")), Is.EqualTo("warm-value"));

        await server.SuspendAsync();
        var paused = Stopwatch.StartNew();
        await Eventually.HoldsAsync(() => !health.IsAvailable, "the heartbeat notices the hung server", TimeSpan.FromSeconds(10));
        TimeSpan noticed = paused.Elapsed;
        double[] micros = await TimeMissesAsync(cache, "paused");
        await cache.SetAsync("during", "written-while-paused");

        await server.ResumeAsync();
        var back = Stopwatch.StartNew();
        TimeSpan written = await UntilAWriteLandsAsync(server, cache);
        await Eventually.HoldsAsync(async () => (await server.CliAsync("EXISTS", "outage:during")).Trim() == "1", "the write queued while paused is replayed");

        Report($"paused (noticed after {noticed.TotalMilliseconds:0} ms)", micros, written, back.Elapsed);
        Assert.That(noticed, Is.LessThan(TimeSpan.FromSeconds(5)), "a PING a second, unanswered for a second");
        Assert.That(Percentile(micros, 99), Is.LessThan(50_000), "once noticed, misses skip L2");
        Assert.That(written, Is.LessThan(TimeSpan.FromSeconds(5)), "writes reach Redis soon after the resume, without waiting out the breaker");
    }

    [Test]
    public void ConnectionLevelFailures_AreTellApartFromOneCommandsError()
    {
        Assert.Multiple(() =>
        {
            Assert.That(RedisCacheHealth.Classify(new RedisConnectionException(ConnectionFailureType.SocketFailure, CommandFlags.None, "x")), Does.Contain("SocketFailure"));
            Assert.That(RedisCacheHealth.Classify(new RedisTimeoutException(CommandFlags.None, "x", CommandStatus.Sent)), Is.EqualTo("timeout"));
            Assert.That(RedisCacheHealth.Classify(new InvalidOperationException("wrapped", new SocketException())), Is.EqualTo("socket failure"));
            Assert.That(RedisCacheHealth.Classify(new AggregateException(new IOException("x"))), Is.EqualTo("socket failure"));
            Assert.That(RedisCacheHealth.Classify(new RedisServerException(RedisErrorKind.Unknown, CommandFlags.None, "WRONGTYPE")), Is.Null);
            Assert.That(RedisCacheHealth.Classify(new InvalidOperationException("a bug")), Is.Null);
        });
    }

    private static ServiceProvider Provider(RedisServer server, CapturingLoggerProvider logs)
    {
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        services.AddCoalescingCache().WithRedis(o =>
        {
            o.Configuration = server.Configuration; // CacheGuard's defaults: FailFast backlog, quick reconnects
            o.InstanceName = "outage:";
        });
        return services.BuildServiceProvider();
    }

    /// <summary>Sequential misses on cold keys with an instant loader; returns each call's time in µs, the first one left out.</summary>
    private static async Task<double[]> TimeMissesAsync(ICoalescingCache cache, string prefix)
    {
        var micros = new List<double>(Misses);
        for (int i = 0; i < Misses; i++)
        {
            long start = Stopwatch.GetTimestamp();
            string value = await cache.GetOrLoadAsync(prefix + i.ToString(CultureInfo.InvariantCulture), static _ => Task.FromResult("fresh"));
            double elapsed = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            Assert.That(value, Is.EqualTo("fresh"));
            if (i > 0)
            {
                micros.Add(elapsed); // after the first failure has been seen
            }
        }

        micros.Sort();
        return [.. micros];
    }

    /// <summary>Writes a new key every 20 ms until one is in Redis; returns how long that took.</summary>
    private static async Task<TimeSpan> UntilAWriteLandsAsync(RedisServer server, ICoalescingCache cache)
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; clock.Elapsed < TestRedis.Guard; i++)
        {
            string key = "after" + i.ToString(CultureInfo.InvariantCulture);
            await cache.SetAsync(key, i);
            if ((await server.CliAsync("EXISTS", "outage:" + key)).Trim() == "1")
            {
                return clock.Elapsed;
            }

            await Task.Delay(20);
        }

        Assert.Fail($"no write reached Redis within {TestRedis.Guard.TotalSeconds} s");
        return clock.Elapsed;
    }

    private static void Report(string what, double[] micros, TimeSpan written, TimeSpan replayed)
    {
        string line = string.Create(CultureInfo.InvariantCulture,
            $"Redis {what}: {micros.Length} sequential misses, p50 {Percentile(micros, 50) / 1000:0.00} ms, p99 {Percentile(micros, 99) / 1000:0.00} ms, max {micros[^1] / 1000:0.00} ms per miss; after Redis answered again a new write landed in {written.TotalMilliseconds:0} ms and the queued write in {replayed.TotalMilliseconds:0} ms");
        TestContext.Progress.WriteLine(line);
        TestContext.Out.WriteLine(line);
    }

    private static double Percentile(double[] sorted, int percentile) =>
        sorted[Math.Clamp((int)Math.Ceiling(sorted.Length * percentile / 100.0) - 1, 0, sorted.Length - 1)];
}
