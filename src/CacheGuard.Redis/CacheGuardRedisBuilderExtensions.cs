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
        builder.Services.AddOptions<RedisLoadLockOptions>(DistributedRegistration.LoadLockOptionsName(name));
        builder.Services.AddKeyedSingleton(name, (sp, _) => DistributedRegistration.CreateLoadLock(sp, name));
        return builder
            .WithDistributedCache(sp => sp.GetRequiredKeyedService<RedisDistributedCache>(name))
            .WithDistributedLoadLock(sp => sp.GetRequiredKeyedService<RedisDistributedLoadLock>(name), enable: false);
    }

    /// <summary>
    /// Turns on the distributed load lock (<see cref="CoalescingCacheOptions.DistributedLoadLock"/>) with the
    /// <see cref="RedisDistributedLoadLock"/> registered by <c>WithRedis</c>, and configures its lease and polling.
    /// </summary>
    /// <param name="builder">The cache builder, after <c>WithRedis(...)</c>.</param>
    /// <param name="configure">Sets the lease and poll interval, or <see langword="null"/> for the defaults (30 s, 100 ms).</param>
    /// <returns>The same builder.</returns>
    /// <remarks>
    /// Setting <c>o.DistributedLoadLock = true</c> in <c>AddCoalescingCache</c> does the same with the defaults. On an
    /// L2 miss one node per key runs the loader; the others wait for it (at most
    /// <see cref="CoalescingCacheOptions.DistributedLoadLockTimeout"/>) and read its result from L2. Costs one
    /// <c>SET NX</c> round trip per miss, and a release script per load. See docs/distributed.md.
    /// </remarks>
    public static ICoalescingCacheBuilder WithRedisLoadLock(this ICoalescingCacheBuilder builder, Action<RedisLoadLockOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (configure is not null)
        {
            builder.Services.Configure(DistributedRegistration.LoadLockOptionsName(builder.Name), configure);
        }

        builder.Services.Configure<CoalescingCacheOptions>(builder.Name, static o => o.DistributedLoadLock = true);
        return builder;
    }

    /// <summary>
    /// Keeps this cache's L1 coherent across nodes with a <see cref="RedisBackplane"/> on the connection registered by
    /// <c>WithRedis</c>: every <c>SetAsync</c>, <c>RemoveAsync</c>, <c>RemoveByTagAsync</c> and completed load is
    /// announced, and other nodes evict that key (or tag) from their L1.
    /// </summary>
    /// <param name="builder">The cache builder, with <c>WithRedis(...)</c> also called (before or after).</param>
    /// <returns>The same builder.</returns>
    /// <remarks>
    /// The channel is <c>InstanceName + KeyPrefix + "__cacheguard:invalidations"</c>, so nodes sharing an L2 key space
    /// share invalidations. The backplane is a keyed singleton under <see cref="ICoalescingCacheBuilder.Name"/>,
    /// disposed with the container. Creating the cache without <c>WithRedis</c> throws
    /// <see cref="InvalidOperationException"/>. See docs/distributed.md for the staleness window.
    /// </remarks>
    public static ICoalescingCacheBuilder WithBackplane(this ICoalescingCacheBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        string name = builder.Name;
        builder.Services.AddKeyedSingleton(name, (sp, _) => DistributedRegistration.CreateBackplane(sp, name));
        return builder.WithBackplane(sp => sp.GetRequiredKeyedService<RedisBackplane>(name));
    }
}
