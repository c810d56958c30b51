using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;
using ZiggyCreatures.Caching.Fusion;
using ZiggyCreatures.Caching.Fusion.Backplane.StackExchangeRedis;
using ZiggyCreatures.Caching.Fusion.Locking.Distributed.Redis;
using ZiggyCreatures.Caching.Fusion.Serialization.SystemTextJson;

namespace CacheGuard.Benchmarks;

/// <summary>The libraries the suite compares, by the names the report and the charts use.</summary>
internal static class Library
{
    public const string Raw = "raw";
    public const string CacheGuard = "CacheGuard";
    public const string Hybrid = "HybridCache";
    public const string Fusion = "FusionCache";

    public static readonly string[] Peers = [CacheGuard, Hybrid, Fusion];
}

/// <summary>
/// How every library is set up, in one place, so all of them get the same L1 and L2 lifetimes and the same Redis, each
/// configured the way its own documentation shows: CacheGuard through <c>AddCoalescingCache</c>, HybridCache through
/// <c>AddHybridCache</c> (it finds the registered <see cref="IDistributedCache"/> by itself), FusionCache through
/// <c>AddFusionCache</c> with its System.Text.Json serializer, the registered distributed cache and its Redis
/// backplane. The L2 is Microsoft's <c>RedisCache</c> (<c>AddStackExchangeRedisCache</c>) for all three. Each
/// library gets its own service provider: nothing is shared between them but the Redis server.
/// </summary>
internal static class Peers
{
    /// <summary>How long an entry lives in L2 (and overall).</summary>
    public static readonly TimeSpan L2Expiration = TimeSpan.FromMinutes(10);

    /// <summary>How long an entry lives in a node's L1.</summary>
    public static readonly TimeSpan L1Expiration = TimeSpan.FromMinutes(5);

    /// <summary>The settings, as the report prints them beside the tables.</summary>
    public static readonly string[] Settings =
    [
        $"Same lifetimes for all: {L2Expiration.TotalMinutes:0} min in L2 (overall), {L1Expiration.TotalMinutes:0} min in L1. Each library in its own service provider.",
        "raw: `MemoryCache` (default options) for the in-process rows; Microsoft's `RedisCache` (`AddStackExchangeRedisCache`) + System.Text.Json for the Redis rows.",
        "CacheGuard: `AddCoalescingCache(o => { o.DefaultExpiration = 10 min; o.DefaultLocalExpiration = 5 min; })`, other options at their defaults (10 % TTL jitter); with Redis `.WithRedis()` (CacheGuard.Redis) over the same `AddStackExchangeRedisCache` registration, as its docs show (that `RedisCache` is L2; CacheGuard.Redis adds the connection's health signal and pipelined batch reads); the distributed-lock rows `.WithRedis(configuration).WithRedisLoadLock()` (CacheGuard.Redis).",
        "HybridCache (Microsoft.Extensions.Caching.Hybrid 10.11.0): `AddHybridCache(o => o.DefaultEntryOptions = new() { Expiration = 10 min, LocalCacheExpiration = 5 min })`, its default System.Text.Json serializer; with Redis it finds the `IDistributedCache` registered by `AddStackExchangeRedisCache`. It has no distributed lock and no backplane.",
        "FusionCache 2.9.0: `AddFusionCache().WithDefaultEntryOptions(new FusionCacheEntryOptions { Duration = 10 min, MemoryCacheDuration = 5 min })`; with Redis `.WithSerializer(new FusionCacheSystemTextJsonSerializer()).WithRegisteredDistributedCache().WithBackplane(new RedisBackplane(...))` as its backplane docs show, and for the lock rows `.WithRedisDistributedLocker(...)` (ZiggyCreatures.FusionCache.Locking.Distributed.Redis).",
        "To read the L2 on every call, each library's own switch: CacheGuard `CacheEntryFlags.DisableLocalCacheRead`, HybridCache `HybridCacheEntryFlags.DisableLocalCacheRead`, FusionCache `SkipMemoryCacheRead = true`.",
    ];

    /// <summary>RedisCache's key prefix in every Redis row.</summary>
    public const string InstanceName = "bench:";

    /// <summary>CacheGuard; with <paramref name="redis"/>, over Microsoft's RedisCache registered by the app, through <c>WithRedis()</c>.</summary>
    public static ServiceProvider CacheGuard(string? redis = null)
    {
        var services = new ServiceCollection();
        ICoalescingCacheBuilder builder = services.AddCoalescingCache(ConfigureCacheGuard);
        if (redis is not null)
        {
            AddRedisCache(services, redis);
            builder.WithRedis(); // the app's RedisCache as L2, as docs/redis.md shows: CacheGuard.Redis adds its health signal and batch reads
        }

        return services.BuildServiceProvider();
    }

    /// <summary>CacheGuard with its own Redis tier and the distributed load lock (the public API of CacheGuard.Redis).</summary>
    public static ServiceProvider CacheGuardWithLoadLock(string redis)
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache(ConfigureCacheGuard).WithRedis(redis).WithRedisLoadLock();
        return services.BuildServiceProvider();
    }

    /// <summary>HybridCache; with <paramref name="redis"/>, over Microsoft's RedisCache.</summary>
    public static ServiceProvider Hybrid(string? redis = null)
    {
        var services = new ServiceCollection();
        if (redis is not null)
        {
            AddRedisCache(services, redis);
        }

        services.AddHybridCache(o => o.DefaultEntryOptions = new HybridCacheEntryOptions { Expiration = L2Expiration, LocalCacheExpiration = L1Expiration });
        return services.BuildServiceProvider();
    }

    /// <summary>FusionCache; with <paramref name="redis"/>, its serializer, Microsoft's RedisCache and its Redis backplane.</summary>
    public static ServiceProvider Fusion(string? redis = null, bool distributedLocker = false)
    {
        var services = new ServiceCollection();
        IFusionCacheBuilder builder = services.AddFusionCache()
            .WithDefaultEntryOptions(new FusionCacheEntryOptions { Duration = L2Expiration, MemoryCacheDuration = L1Expiration });
        if (redis is not null)
        {
            AddRedisCache(services, redis);
            builder
                .WithSerializer(new FusionCacheSystemTextJsonSerializer())
                .WithRegisteredDistributedCache()
                .WithBackplane(new RedisBackplane(new RedisBackplaneOptions { Configuration = redis }));
            if (distributedLocker)
            {
                builder.WithRedisDistributedLocker(o => o.Configuration = redis);
            }
        }

        return services.BuildServiceProvider();
    }

    /// <summary>Microsoft's RedisCache alone: the raw baseline of the Redis rows.</summary>
    public static ServiceProvider RawRedis(string redis)
    {
        var services = new ServiceCollection();
        AddRedisCache(services, redis);
        return services.BuildServiceProvider();
    }

    private static void ConfigureCacheGuard(CoalescingCacheOptions o)
    {
        o.DefaultExpiration = L2Expiration;
        o.DefaultLocalExpiration = L1Expiration;
    }

    private static void AddRedisCache(IServiceCollection services, string redis) =>
        services.AddStackExchangeRedisCache(o =>
        {
            o.Configuration = redis;
            o.InstanceName = InstanceName;
        });
}
