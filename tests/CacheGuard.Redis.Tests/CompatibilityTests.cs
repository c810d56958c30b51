using System.Globalization;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Redis.Tests;

/// <summary>Entries are stored exactly as Microsoft's RedisCache stores them, checked from outside with redis-cli.</summary>
public class CompatibilityTests
{
    private RedisServer _server = null!;
    private RedisConnection _connection = null!;
    private string _instance = null!;
    private RedisDistributedCache _cache = null!;

    [OneTimeSetUp]
    public async Task StartServer()
    {
        _server = await RedisServer.AcquireSharedAsync();
        _connection = new RedisConnection(TestConnections.For(_server));
    }

    [OneTimeTearDown]
    public async Task StopServer()
    {
        await _connection.DisposeAsync();
        await _server.DisposeAsync();
    }

    [SetUp]
    public void NewInstance()
    {
        _instance = "App" + Guid.NewGuid().ToString("N")[..6] + "_";
        _cache = new RedisDistributedCache(_connection, _instance);
    }

    [Test]
    public async Task EntryWrittenInRedisCacheLayoutByRedisCli_IsReadBack()
    {
        await _server.CliAsync("HSET", _instance + "plain", "absexp", "-1", "sldexp", "-1", "data", "from-redis-cache");
        Assert.That(await _cache.GetAsync("plain"), Is.EqualTo("from-redis-cache"u8.ToArray()));
    }

    [Test]
    public async Task SlidingEntryWrittenByRedisCli_IsReadBack_AndItsTtlReset()
    {
        string sliding = TimeSpan.FromMinutes(5).Ticks.ToString(CultureInfo.InvariantCulture);
        await _server.CliAsync("HSET", _instance + "sliding", "absexp", "-1", "sldexp", sliding, "data", "x");
        await _server.CliAsync("EXPIRE", _instance + "sliding", "10");

        Assert.That(await _cache.GetAsync("sliding"), Is.EqualTo("x"u8.ToArray()));
        Assert.That(long.Parse((await _server.CliAsync("TTL", _instance + "sliding")).Trim(), CultureInfo.InvariantCulture), Is.InRange(298, 300));
    }

    [Test]
    public async Task EntryWithPastAbsoluteExpiration_IsAMiss()
    {
        string past = DateTimeOffset.UtcNow.AddMinutes(-1).UtcTicks.ToString(CultureInfo.InvariantCulture);
        await _server.CliAsync("HSET", _instance + "stale", "absexp", past, "sldexp", "-1", "data", "old");
        Assert.That(await _cache.GetAsync("stale"), Is.Null);
    }

    [Test]
    public async Task EntryWrittenByRedisDistributedCache_HasTheRedisCacheLayout()
    {
        DateTimeOffset before = DateTimeOffset.UtcNow;
        await _cache.SetAsync("layout", "payload"u8.ToArray(), new DistributedCacheEntryOptions
        {
            AbsoluteExpirationRelativeToNow = TimeSpan.FromHours(1),
            SlidingExpiration = TimeSpan.FromMinutes(10),
        });
        DateTimeOffset after = DateTimeOffset.UtcNow;

        string[] lines = (await _server.CliAsync("HGETALL", _instance + "layout")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var fields = new Dictionary<string, string>();
        for (int i = 0; i + 1 < lines.Length; i += 2)
        {
            fields[lines[i]] = lines[i + 1];
        }

        Assert.That(fields.Keys, Is.EquivalentTo(new[] { "absexp", "sldexp", "data" }));
        long absexp = long.Parse(fields["absexp"], CultureInfo.InvariantCulture);
        Assert.Multiple(async () =>
        {
            Assert.That(absexp, Is.InRange(before.AddHours(1).UtcTicks, after.AddHours(1).UtcTicks));
            Assert.That(fields["sldexp"], Is.EqualTo(TimeSpan.FromMinutes(10).Ticks.ToString(CultureInfo.InvariantCulture)));
            Assert.That(fields["data"], Is.EqualTo("payload"));
            Assert.That(long.Parse((await _server.CliAsync("TTL", _instance + "layout")).Trim(), CultureInfo.InvariantCulture), Is.InRange(598, 600));
            Assert.That((await _server.CliAsync("TYPE", _instance + "layout")).Trim(), Is.EqualTo("hash"));
        });
    }

    [Test]
    public async Task EntryWithoutExpiration_StoresMinusOne_AndHasNoTtl()
    {
        await _cache.SetAsync("noexp", [1], new DistributedCacheEntryOptions());
        Assert.Multiple(async () =>
        {
            Assert.That((await _server.CliAsync("HGET", _instance + "noexp", "absexp")).Trim(), Is.EqualTo("-1"));
            Assert.That((await _server.CliAsync("HGET", _instance + "noexp", "sldexp")).Trim(), Is.EqualTo("-1"));
            Assert.That((await _server.CliAsync("TTL", _instance + "noexp")).Trim(), Is.EqualTo("-1"));
        });
    }

    [Test]
    public void TtlSeconds_MatchRedisCache()
    {
        var now = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.Multiple(() =>
        {
            Assert.That(RedisDistributedCache.GetTtlSeconds(now, null, null), Is.EqualTo(-1));
            Assert.That(RedisDistributedCache.GetTtlSeconds(now, now.AddSeconds(90.9), null), Is.EqualTo(90));
            Assert.That(RedisDistributedCache.GetTtlSeconds(now, null, TimeSpan.FromSeconds(30.5)), Is.EqualTo(30));
            Assert.That(RedisDistributedCache.GetTtlSeconds(now, now.AddSeconds(90), TimeSpan.FromSeconds(30)), Is.EqualTo(30));
            Assert.That(RedisDistributedCache.GetTtlSeconds(now, now.AddSeconds(20), TimeSpan.FromSeconds(30)), Is.EqualTo(20));
        });
    }
}
