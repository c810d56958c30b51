using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CacheGuard.Redis.Internal;

/// <summary>Creates the connection and cache from named <see cref="CacheGuardRedisOptions"/>.</summary>
internal static class RedisRegistration
{
    /// <summary>The options name used by <c>WithRedis</c> for the coalescing cache named <paramref name="cacheName"/>.</summary>
    public static string L2OptionsName(string cacheName) => "CacheGuard.Redis.L2:" + cacheName;

    public static RedisConnection CreateConnection(IServiceProvider services, string optionsName)
    {
        CacheGuardRedisOptions options = services.GetRequiredService<IOptionsMonitor<CacheGuardRedisOptions>>().Get(optionsName);
        return new RedisConnection(options.Resolve(), services.GetService<ILogger<RedisConnection>>(), services.GetService<TimeProvider>());
    }

    public static RedisDistributedCache CreateCache(IServiceProvider services, string optionsName, RedisConnection connection)
    {
        CacheGuardRedisOptions options = services.GetRequiredService<IOptionsMonitor<CacheGuardRedisOptions>>().Get(optionsName);
        return new RedisDistributedCache(connection, options.InstanceName, services.GetService<TimeProvider>());
    }
}
