using CacheGuard.Redis.Internal;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>The batch reader reads exactly what Microsoft's RedisCache wrote, and refreshes sliding entries as RedisCache does.</summary>
public class BatchReaderTests
{
    private ConnectionMultiplexer _connection = null!;
    private string _instance = null!;
#pragma warning disable NUnit1032 // Never disposed: disposing a RedisCache closes its multiplexer, which this fixture shares.
    private RedisCache _cache = null!;
#pragma warning restore NUnit1032
    private RedisCacheBatchReader _reader = null!;

    [OneTimeSetUp]
    public async Task Connect() => _connection = await TestRedis.ConnectAsync(await SharedRedis.PlainAsync());

    [OneTimeTearDown]
    public async Task Disconnect() => await _connection.DisposeAsync();

    [SetUp]
    public void NewInstance()
    {
        _instance = TestRedis.UniquePrefix("App");
        var source = new MultiplexerSource(_connection, "test");
        _cache = new RedisCache(new RedisCacheOptions { InstanceName = _instance, ConnectionMultiplexerFactory = source.GetAsync });
        _reader = new RedisCacheBatchReader(source, _instance);
    }

    [Test]
    public async Task ReadsWhatRedisCacheWrote_InKeyOrder_NullForMissing()
    {
        await _cache.SetAsync("a", [1, 2, 3], new DistributedCacheEntryOptions());
        await _cache.SetAsync("c", [], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(5) });
        await _cache.SetAsync("ключ 🔑", [9], new DistributedCacheEntryOptions());

        byte[]?[] read = await _reader.GetManyAsync(["a", "b", "c", "ключ 🔑"]);

        Assert.That(read, Is.EqualTo(new byte[]?[] { [1, 2, 3], null, [], [9] }));
        Assert.That(read[0], Is.EqualTo(await _cache.GetAsync("a")));
    }

    [Test]
    public async Task SlidingEntries_GetTheTtlRedisCacheWouldGive_CappedByTheirAbsoluteExpiration()
    {
        var sliding = new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromMinutes(5) };
        var capped = new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromMinutes(5), AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(2) };
        foreach (string key in new[] { "s1", "s2" })
        {
            await _cache.SetAsync(key, [1], sliding);
        }

        foreach (string key in new[] { "c1", "c2" })
        {
            await _cache.SetAsync(key, [1], capped);
        }

        IDatabase redis = _connection.GetDatabase();
        foreach (string key in new[] { "s1", "s2", "c1", "c2" })
        {
            await redis.KeyExpireAsync(_instance + key, TimeSpan.FromSeconds(10)); // as if time had passed
        }

        Assert.That(await _cache.GetAsync("s1"), Is.Not.Null);
        Assert.That(await _cache.GetAsync("c1"), Is.Not.Null);
        Assert.That(await _reader.GetManyAsync(["s2", "c2"]), Has.All.Not.Null);

        await Eventually.HoldsAsync(async () => await redis.KeyTimeToLiveAsync(_instance + "s2") > TimeSpan.FromMinutes(4), "the batch read refreshed the sliding entry");
        TimeSpan? byCache = await redis.KeyTimeToLiveAsync(_instance + "s1");
        TimeSpan? byReader = await redis.KeyTimeToLiveAsync(_instance + "s2");
        TimeSpan? cappedByCache = await redis.KeyTimeToLiveAsync(_instance + "c1");
        TimeSpan? cappedByReader = await redis.KeyTimeToLiveAsync(_instance + "c2");
        Assert.Multiple(() =>
        {
            Assert.That(byReader!.Value.TotalSeconds, Is.EqualTo(byCache!.Value.TotalSeconds).Within(2), "the same TTL as RedisCache.GetAsync gives");
            Assert.That(cappedByReader!.Value.TotalSeconds, Is.EqualTo(cappedByCache!.Value.TotalSeconds).Within(2));
            Assert.That(cappedByReader.Value, Is.LessThanOrEqualTo(TimeSpan.FromMinutes(2)), "capped by the absolute expiration");
        });
    }

    [Test]
    public async Task EntriesWithoutSlidingExpiration_KeepTheirTtl()
    {
        await _cache.SetAsync("abs", [1], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(10) });
        IDatabase redis = _connection.GetDatabase();
        await redis.KeyExpireAsync(_instance + "abs", TimeSpan.FromSeconds(30));
        Assert.That(await _reader.GetManyAsync(["abs"]), Has.All.Not.Null);
        Assert.That(await redis.KeyTimeToLiveAsync(_instance + "abs"), Is.LessThanOrEqualTo(TimeSpan.FromSeconds(30)));
    }

    [Test]
    public void SlidingTtl_MatchesRedisCache()
    {
        var now = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
        long window = TimeSpan.FromSeconds(30).Ticks;
        Assert.Multiple(() =>
        {
            Assert.That(RedisCacheBatchReader.SlidingTtl(-1, -1, now), Is.Null);
            Assert.That(RedisCacheBatchReader.SlidingTtl(now.AddHours(1).UtcTicks, -1, now), Is.Null, "absolute only: no refresh");
            Assert.That(RedisCacheBatchReader.SlidingTtl(-1, window, now), Is.EqualTo(TimeSpan.FromSeconds(30)));
            Assert.That(RedisCacheBatchReader.SlidingTtl(now.AddSeconds(90).UtcTicks, window, now), Is.EqualTo(TimeSpan.FromSeconds(30)));
            Assert.That(RedisCacheBatchReader.SlidingTtl(now.AddSeconds(20).UtcTicks, window, now), Is.EqualTo(TimeSpan.FromSeconds(20)));
            Assert.That(RedisCacheBatchReader.SlidingTtl(RedisValue.Null, RedisValue.Null, now), Is.Null);
        });
    }

    [Test]
    public async Task Disconnected_FailsAtOnce_WithAConnectionException()
    {
        int port = RedisServer.FreePort();
        await using ConnectionMultiplexer nowhere = await ConnectionMultiplexer.ConnectAsync(RedisConnections.ApplyDefaults(ConfigurationOptions.Parse($"127.0.0.1:{port},connectTimeout=300")));
        var reader = new RedisCacheBatchReader(new MultiplexerSource(nowhere, "127.0.0.1:" + port), null);
        var ex = Assert.ThrowsAsync<RedisConnectionException>(async () => await reader.GetManyAsync(["k"]));
        Assert.That(ex!.Message, Does.Contain("127.0.0.1:" + port));
    }
}
