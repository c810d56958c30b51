using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CacheGuard.Redis.Internal;

/// <summary>Creates the backplane and load lock of the coalescing cache named <c>cacheName</c> from the container.</summary>
internal static class DistributedRegistration
{
    public const string ChannelSuffix = "__cacheguard:invalidations";

    /// <summary>The options name of the load lock of the cache named <paramref name="cacheName"/>.</summary>
    public static string LoadLockOptionsName(string cacheName) => "CacheGuard.Redis.LoadLock:" + cacheName;

    /// <summary>The backplane channel for an L2 key space: Redis instance name, then the cache's key prefix.</summary>
    public static string Channel(string? instanceName, string keyPrefix) => instanceName + keyPrefix + ChannelSuffix;

    public static RedisBackplane CreateBackplane(IServiceProvider services, string cacheName)
    {
        RedisConnection connection = services.GetKeyedService<RedisConnection>(cacheName)
            ?? throw new InvalidOperationException($"WithBackplane() on the cache '{cacheName}' needs WithRedis(...) on the same builder: the backplane uses that Redis connection.");
        CacheGuardRedisOptions redis = services.GetRequiredService<IOptionsMonitor<CacheGuardRedisOptions>>().Get(RedisRegistration.L2OptionsName(cacheName));
        CoalescingCacheOptions cache = services.GetRequiredService<IOptionsMonitor<CoalescingCacheOptions>>().Get(cacheName);
        return new RedisBackplane(connection, Channel(redis.InstanceName, cache.KeyPrefix), services.GetService<ILogger<RedisBackplane>>(), services.GetService<TimeProvider>());
    }

    public static RedisDistributedLoadLock CreateLoadLock(IServiceProvider services, string cacheName)
    {
        CacheGuardRedisOptions redis = services.GetRequiredService<IOptionsMonitor<CacheGuardRedisOptions>>().Get(RedisRegistration.L2OptionsName(cacheName));
        RedisLoadLockOptions options = services.GetRequiredService<IOptionsMonitor<RedisLoadLockOptions>>().Get(LoadLockOptionsName(cacheName));
        return new RedisDistributedLoadLock(
            services.GetRequiredKeyedService<RedisConnection>(cacheName),
            redis.InstanceName,
            options,
            services.GetService<ILogger<RedisDistributedLoadLock>>(),
            services.GetService<TimeProvider>());
    }
}
