using CacheGuard;
using CacheGuard.Redis;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Makes Redis the L2 of a cache registered with <c>AddCoalescingCache</c>, on StackExchange.Redis and Microsoft's <see cref="RedisCache"/>.</summary>
public static class CacheGuardRedisBuilderExtensions
{
    /// <summary>Uses Microsoft's <see cref="RedisCache"/> on one shared <see cref="IConnectionMultiplexer"/> as the cache's L2.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configuration">A StackExchange.Redis configuration string (<c>"host:6379,password=...,ssl=true"</c>); checked now, so a bad string fails here.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentException"><paramref name="configuration"/> is invalid; the message names the bad part and never quotes a password.</exception>
    /// <remarks>The same as <c>WithRedis(o =&gt; o.Configuration = configuration)</c>; see that overload.</remarks>
    public static ICoalescingCacheBuilder WithRedis(this ICoalescingCacheBuilder builder, string configuration)
    {
        ArgumentNullException.ThrowIfNull(builder);
        _ = RedisConfigurationText.Parse(configuration, nameof(configuration));
        return builder.WithRedis(options => options.Configuration = configuration);
    }

    /// <summary>Uses Microsoft's <see cref="RedisCache"/>, configured by <paramref name="configure"/>, as the cache's L2.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="configure">Sets <see cref="RedisCacheOptions.Configuration"/> (or <see cref="RedisCacheOptions.ConfigurationOptions"/>, or <see cref="RedisCacheOptions.ConnectionMultiplexerFactory"/>) and <see cref="RedisCacheOptions.InstanceName"/>.</param>
    /// <returns>The same builder.</returns>
    /// <remarks>
    /// <para>One <see cref="IConnectionMultiplexer"/> serves the L2, the batch reader, the health source, the backplane and
    /// the load lock, and every cache configured with the same string: one interactive and one subscriber connection
    /// per Redis endpoint. CacheGuard connects it in the background with <see cref="BacklogPolicy.FailFast"/>, no abort
    /// when the first connect fails, and reconnect attempts every 250 ms to 2 s. With a
    /// <see cref="RedisCacheOptions.ConnectionMultiplexerFactory"/>, the factory is called once and its multiplexer
    /// shared as it is. For the default cache, the multiplexer is also registered as the container's
    /// <see cref="IConnectionMultiplexer"/> unless one already is.</para>
    /// <para>The distributed load lock is registered but left off (<c>WithRedisLoadLock()</c> turns it on). The
    /// container's <c>IDistributedCache</c> is left alone. Invalid options fail when the cache is created.</para>
    /// </remarks>
    public static ICoalescingCacheBuilder WithRedis(this ICoalescingCacheBuilder builder, Action<RedisCacheOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        string name = builder.Name;
        builder.Services.AddOptions<RedisCacheOptions>(RedisRegistration.CacheOptionsName(name)).Configure(configure);
        RedisRegistration.MarkExplicit(builder.Services, name);
        if (name.Length == 0)
        {
            builder.Services.TryAddSingleton<IConnectionMultiplexer>(static sp => RedisRegistration.GetTier(sp, string.Empty).Connection.GetAsync().GetAwaiter().GetResult());
        }

        return builder.WithRedis();
    }

    /// <summary>
    /// Uses the Redis the application registered as the cache's L2: the <see cref="RedisCache"/> of
    /// <c>AddStackExchangeRedisCache(...)</c>, or else a <see cref="RedisCache"/> on the container's
    /// <see cref="IConnectionMultiplexer"/>; after <c>WithRedis(configuration)</c>, that configuration.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <returns>The same builder.</returns>
    /// <remarks>
    /// Besides the L2 it registers the health source (the cache skips L2 while Redis is disconnected and replays its
    /// writes when it is back), the pipelined batch reader for <c>GetOrLoadManyAsync</c>, and the load lock (left off).
    /// The application's <see cref="RedisCache"/> is made to share its multiplexer with the backplane and the lock:
    /// CacheGuard connects it from the application's <see cref="RedisCacheOptions"/> (with the defaults described on
    /// <see cref="WithRedis(ICoalescingCacheBuilder, Action{RedisCacheOptions})"/>), or calls the application's
    /// <see cref="RedisCacheOptions.ConnectionMultiplexerFactory"/> once. Creating the cache throws
    /// <see cref="InvalidOperationException"/> when no Redis is registered at all.
    /// </remarks>
    public static ICoalescingCacheBuilder WithRedis(this ICoalescingCacheBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        string name = builder.Name;
        RedisRegistration.AddTier(builder.Services, name);
        builder.Services.AddOptions<RedisLoadLockOptions>(RedisRegistration.LoadLockOptionsName(name));
        builder.Services.TryAddKeyedSingleton(name, static (sp, key) => CreateLoadLock(sp, (string)key!));
        return builder
            .WithDistributedCache(sp => RedisRegistration.GetTier(sp, name).Cache)
            .WithBatchDistributedCache(sp => RedisRegistration.GetTier(sp, name).BatchReader)
            .WithDistributedCacheHealth(sp => RedisRegistration.GetTier(sp, name).Health)
            .WithDistributedLoadLock(sp => sp.GetRequiredKeyedService<RedisDistributedLoadLock>(name), enable: false);
    }

    /// <summary>
    /// Turns on the distributed load lock (<see cref="CoalescingCacheOptions.DistributedLoadLock"/>) with a
    /// <see cref="RedisDistributedLoadLock"/> on the cache's shared multiplexer, and configures its lease and checks.
    /// </summary>
    /// <param name="builder">The cache builder. Without <c>WithRedis(...)</c>, this calls <see cref="WithRedis(ICoalescingCacheBuilder)"/>.</param>
    /// <param name="configure">Sets the lease and check interval, or <see langword="null"/> for the defaults (5 s, 100 ms).</param>
    /// <returns>The same builder.</returns>
    /// <remarks>
    /// On an L2 miss one node per key runs the loader; the others wait for it (at most
    /// <see cref="CoalescingCacheOptions.DistributedLoadLockTimeout"/>) and read its result from L2. Costs one
    /// <c>SET NX PX</c> round trip per miss (one per batch in <c>GetOrLoadManyAsync</c>) and a release script per load.
    /// See docs/distributed.md.
    /// </remarks>
    public static ICoalescingCacheBuilder WithRedisLoadLock(this ICoalescingCacheBuilder builder, Action<RedisLoadLockOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        EnsureRedis(builder);
        if (configure is not null)
        {
            builder.Services.Configure(RedisRegistration.LoadLockOptionsName(builder.Name), configure);
        }

        builder.Services.Configure<CoalescingCacheOptions>(builder.Name, static o => o.DistributedLoadLock = true);
        return builder;
    }

    /// <summary>
    /// Keeps this cache's L1 coherent across nodes with a <see cref="RedisBackplane"/> on the cache's shared
    /// multiplexer: every <c>SetAsync</c>, <c>RemoveAsync</c>, <c>RemoveByTagAsync</c> and completed load is announced,
    /// and other nodes evict that key (or tag) from their L1.
    /// </summary>
    /// <param name="builder">The cache builder. Without <c>WithRedis(...)</c> (before or after), this calls <see cref="WithRedis(ICoalescingCacheBuilder)"/>.</param>
    /// <returns>The same builder.</returns>
    /// <remarks>
    /// The channel is <c>InstanceName + KeyPrefix + "__cacheguard:invalidations"</c>, so nodes sharing an L2 key space
    /// share invalidations. The backplane is a keyed singleton under <see cref="ICoalescingCacheBuilder.Name"/>,
    /// disposed with the container. See docs/distributed.md for the staleness window.
    /// </remarks>
    public static ICoalescingCacheBuilder WithBackplane(this ICoalescingCacheBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        EnsureRedis(builder);
        string name = builder.Name;
        builder.Services.TryAddKeyedSingleton(name, static (sp, key) => CreateBackplane(sp, (string)key!));
        return builder.WithBackplane(sp => sp.GetRequiredKeyedService<RedisBackplane>(name));
    }

    private static void EnsureRedis(ICoalescingCacheBuilder builder)
    {
        if (!builder.Services.Any(d => d.ServiceType == typeof(RedisDistributedLoadLock) && d.IsKeyedService && Equals(d.ServiceKey, builder.Name)))
        {
            builder.WithRedis();
        }
    }

    private static RedisBackplane CreateBackplane(IServiceProvider services, string cacheName)
    {
        RedisTier tier = RedisRegistration.GetTier(services, cacheName);
        CoalescingCacheOptions cache = services.GetRequiredService<IOptionsMonitor<CoalescingCacheOptions>>().Get(cacheName);
        return new RedisBackplane(tier.Connection, RedisRegistration.Channel(tier.InstanceName, cache.KeyPrefix), tier.LoggerFactory?.CreateLogger<RedisBackplane>(), tier.TimeProvider)
        {
            ServerAnswered = tier.Health.ServerAnswered,
        };
    }

    private static RedisDistributedLoadLock CreateLoadLock(IServiceProvider services, string cacheName)
    {
        RedisTier tier = RedisRegistration.GetTier(services, cacheName);
        RedisLoadLockOptions options = services.GetRequiredService<IOptionsMonitor<RedisLoadLockOptions>>().Get(RedisRegistration.LoadLockOptionsName(cacheName));
        return new RedisDistributedLoadLock(tier.Connection, tier.InstanceName, options, tier.LoggerFactory?.CreateLogger<RedisDistributedLoadLock>(), tier.TimeProvider)
        {
            ServerAnswered = tier.Health.ServerAnswered,
        };
    }
}
