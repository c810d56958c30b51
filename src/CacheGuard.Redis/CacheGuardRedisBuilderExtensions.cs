using CacheGuard;
using CacheGuard.Redis;
using CacheGuard.Redis.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Makes Redis the L2 of a cache registered with <c>AddCoalescingCache</c>.</summary>
public static class CacheGuardRedisBuilderExtensions
{
    /// <summary>Uses a <see cref="RedisDistributedCache"/> on its own <see cref="RedisConnection"/> as the cache's L2.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configuration">A StackExchange.Redis-style string or <c>redis://</c> URI; parsed now, so a bad string fails here.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentException"><paramref name="configuration"/> is invalid; the message quotes the offending part.</exception>
    public static ICoalescingCacheBuilder WithRedis(this ICoalescingCacheBuilder builder, string configuration)
    {
        ArgumentNullException.ThrowIfNull(builder);
        RedisConfiguration parsed = RedisConfiguration.Parse(configuration);
        return builder.WithRedis(options => options.ConfigurationOptions = parsed);
    }

    /// <summary>Uses a <see cref="RedisDistributedCache"/> configured by <paramref name="configure"/> as the cache's L2.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configure">Sets the connection string (or object) and instance name.</param>
    /// <returns>The same builder.</returns>
    /// <remarks>
    /// The connection and cache are keyed singletons under <see cref="ICoalescingCacheBuilder.Name"/>
    /// (<c>GetRequiredKeyedService&lt;RedisConnection&gt;(builder.Name)</c>), so later features such as a pub/sub backplane
    /// can share the connection. They are disposed with the container; the first command connects. The container's
    /// <c>IDistributedCache</c> is left alone: use <c>AddCacheGuardRedisCache</c> for that.
    /// </remarks>
    public static ICoalescingCacheBuilder WithRedis(this ICoalescingCacheBuilder builder, Action<CacheGuardRedisOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        string name = builder.Name;
        string optionsName = RedisRegistration.L2OptionsName(name);
        builder.Services.AddOptions<CacheGuardRedisOptions>(optionsName).Configure(configure);
        builder.Services.AddKeyedSingleton(name, (sp, _) => RedisRegistration.CreateConnection(sp, optionsName));
        builder.Services.AddKeyedSingleton(name, (sp, _) => RedisRegistration.CreateCache(sp, optionsName, sp.GetRequiredKeyedService<RedisConnection>(name)));
        return builder.WithDistributedCache(sp => sp.GetRequiredKeyedService<RedisDistributedCache>(name));
    }
}
