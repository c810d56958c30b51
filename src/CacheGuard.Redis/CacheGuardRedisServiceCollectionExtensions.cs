using CacheGuard.Redis;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="RedisDistributedCache"/> as the container's <see cref="IDistributedCache"/>: a drop-in for <c>AddStackExchangeRedisCache</c>.</summary>
public static class CacheGuardRedisServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="RedisConnection"/> and <see cref="RedisDistributedCache"/>, and makes the cache
    /// the <see cref="IDistributedCache"/> (replacing any registered before).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">A StackExchange.Redis-style string or <c>redis://</c> URI; parsed now, so a bad string fails here.</param>
    /// <param name="instanceName">The raw key prefix (<c>RedisCacheOptions.InstanceName</c>), or <see langword="null"/> for none.</param>
    /// <returns>The same service collection.</returns>
    /// <exception cref="ArgumentException"><paramref name="configuration"/> is invalid; the message quotes the offending part.</exception>
    /// <remarks>The connection is disposed with the container; it connects on the first command.</remarks>
    public static IServiceCollection AddCacheGuardRedisCache(this IServiceCollection services, string configuration, string? instanceName = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        RedisConfiguration parsed = RedisConfiguration.Parse(configuration);
        return services.AddCacheGuardRedisCache(options =>
        {
            options.ConfigurationOptions = parsed;
            options.InstanceName = instanceName;
        });
    }

    /// <summary>
    /// Registers a singleton <see cref="RedisConnection"/> and <see cref="RedisDistributedCache"/> configured by
    /// <paramref name="configure"/>, and makes the cache the <see cref="IDistributedCache"/>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the connection string (or object) and instance name.</param>
    /// <returns>The same service collection.</returns>
    public static IServiceCollection AddCacheGuardRedisCache(this IServiceCollection services, Action<CacheGuardRedisOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<CacheGuardRedisOptions>().Configure(configure);
        services.TryAddSingleton(static sp => RedisRegistration.CreateConnection(sp, Options.Options.DefaultName));
        services.TryAddSingleton(static sp => RedisRegistration.CreateCache(sp, Options.Options.DefaultName, sp.GetRequiredService<RedisConnection>()));
        services.Replace(ServiceDescriptor.Singleton<IDistributedCache>(static sp => sp.GetRequiredService<RedisDistributedCache>()));
        return services;
    }
}
