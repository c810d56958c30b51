using CacheGuard;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>TLS (a CA made for this run, trusted through StackExchange.Redis options) and passwords, end to end through WithRedis.</summary>
public class TlsTests
{
    [Test]
    public async Task TrustedAuthority_L2WritesAndReadsOverTls()
    {
        RedisServer server = await SharedRedis.WithTlsAsync();
        string prefix = TestRedis.UniquePrefix("tls");
        await using ServiceProvider writer = Provider(o => o.ConfigurationOptions = TestRedis.Options(server), prefix, out _);
        await using ServiceProvider reader = Provider(o => o.ConfigurationOptions = TestRedis.Options(server), prefix, out _);

        await writer.GetRequiredService<ICoalescingCache>().SetAsync("k", "over-tls");
        string read = await reader.GetRequiredService<ICoalescingCache>().GetOrLoadAsync<string>("k", static _ => throw new AssertionException("should come from L2"));

        Assert.That(read, Is.EqualTo("over-tls"));
        Assert.That((await server.CliAsync("EXISTS", prefix + "k")).Trim(), Is.EqualTo("1"), "stored in Redis under the instance name");
    }

    [Test]
    public async Task UntrustedAuthority_OrWrongHostName_NeverConnects_AndCallersAreStillServed()
    {
        RedisServer server = await SharedRedis.WithTlsAsync();
        ConfigurationOptions untrusted = ConfigurationOptions.Parse(server.Configuration);
        untrusted.ConnectTimeout = 1_000;
        ConfigurationOptions wrongName = TestRedis.Options(server, o => o.SslHost = "redis.example.org");
        foreach (ConfigurationOptions options in new[] { untrusted, wrongName })
        {
            await using ServiceProvider provider = Provider(o => o.ConfigurationOptions = options, "x:", out CapturingLoggerProvider logs);
            ICoalescingCache cache = provider.GetRequiredService<ICoalescingCache>();
            Assert.That(await cache.GetOrLoadAsync("k", static _ => Task.FromResult("from the loader")), Is.EqualTo("from the loader"));
            RedisTier tier = RedisRegistration.GetTier(provider, string.Empty);
            await tier.Health.Attached.WaitAsync(TestRedis.Guard);
            Assert.That(tier.Health.IsAvailable, Is.False, "the certificate is refused: Redis is unavailable");
            Assert.That(logs.Count(Log.RedisUnavailableId), Is.EqualTo(1));
        }
    }

    [Test]
    public async Task Password_RightOneWorks_WrongOneIsUnavailable_AndNoLogLineOrExceptionShowsIt()
    {
        RedisServer server = await SharedRedis.WithPasswordAsync();
        string prefix = TestRedis.UniquePrefix("auth");
        await using (ServiceProvider right = Provider(o => o.Configuration = server.Configuration, prefix, out _))
        {
            await right.GetRequiredService<ICoalescingCache>().SetAsync("k", 42);
            Assert.That((await server.CliAsync("EXISTS", prefix + "k")).Trim(), Is.EqualTo("1"));
        }

        const string Wrong = "not-the-password-7731";
        string configuration = $"127.0.0.1:{server.Port},password={Wrong},connectTimeout=1000";
        await using ServiceProvider wrong = Provider(o => o.Configuration = configuration, prefix, out CapturingLoggerProvider logs);
        ICoalescingCache cache = wrong.GetRequiredService<ICoalescingCache>();
        Assert.That(await cache.GetOrLoadAsync("k2", static _ => Task.FromResult(7)), Is.EqualTo(7), "served by the loader");
        await cache.SetAsync("k3", 3);
        RedisTier tier = RedisRegistration.GetTier(wrong, string.Empty);
        await tier.Health.Attached.WaitAsync(TestRedis.Guard);
        Assert.That(tier.Health.IsAvailable, Is.False);
        Assert.That(logs.Entries, Is.Not.Empty);
        Assert.That(logs.Entries.Where(e => e.Message.Contains(Wrong, StringComparison.Ordinal) || (e.Exception?.ToString().Contains(Wrong, StringComparison.Ordinal) ?? false)).Select(e => e.Message), Is.Empty, "the password never reaches a log line");
    }

    private static ServiceProvider Provider(Action<Microsoft.Extensions.Caching.StackExchangeRedis.RedisCacheOptions> redis, string prefix, out CapturingLoggerProvider logs)
    {
        var captured = new CapturingLoggerProvider();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(captured).SetMinimumLevel(LogLevel.Debug));
        services.AddCoalescingCache(o => o.DistributedCacheTimeout = TimeSpan.FromSeconds(3)).WithRedis(o =>
        {
            redis(o);
            o.InstanceName = prefix;
        });
        logs = captured;
        return services.BuildServiceProvider();
    }
}
