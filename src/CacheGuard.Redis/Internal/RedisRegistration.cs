using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// Builds the <see cref="RedisTier"/> of the coalescing cache named <c>cacheName</c>: from the options given to
/// <c>WithRedis(...)</c>, or, without them, from what the application registered (<c>AddStackExchangeRedisCache</c>,
/// an <see cref="IConnectionMultiplexer"/>).
/// </summary>
internal static class RedisRegistration
{
    public const string ChannelSuffix = "__cacheguard:invalidations";

    /// <summary>The options name of the <see cref="RedisCacheOptions"/> given to <c>WithRedis</c> for the cache <paramref name="cacheName"/>.</summary>
    public static string CacheOptionsName(string cacheName) => "CacheGuard.Redis:" + cacheName;

    /// <summary>The options name of the load lock of the cache <paramref name="cacheName"/>.</summary>
    public static string LoadLockOptionsName(string cacheName) => "CacheGuard.Redis.LoadLock:" + cacheName;

    /// <summary>The backplane channel for an L2 key space: Redis instance name, then the cache's key prefix.</summary>
    public static string Channel(string? instanceName, string keyPrefix) => instanceName + keyPrefix + ChannelSuffix;

    /// <summary>Registers what every Redis feature of the cache <paramref name="cacheName"/> needs, once per cache.</summary>
    public static void AddTier(IServiceCollection services, string cacheName)
    {
        services.TryAddSingleton(static sp => new RedisConnections(sp.GetService<ILoggerFactory>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<RedisCacheOptions>, ShareRedisCacheConnection>());
        if (!services.Any(d => d.ServiceType == typeof(RedisTier) && d.IsKeyedService && Equals(d.ServiceKey, cacheName)))
        {
            services.AddKeyedSingleton(cacheName, static (sp, key) => CreateTier(sp, (string)key!));
        }
    }

    /// <summary>Marks the cache <paramref name="cacheName"/> as configured by <c>WithRedis(...)</c> options rather than by the application's registrations.</summary>
    public static void MarkExplicit(IServiceCollection services, string cacheName) =>
        services.TryAddKeyedSingleton(cacheName, new ExplicitRedis());

    public static RedisTier GetTier(IServiceProvider services, string cacheName) => services.GetRequiredKeyedService<RedisTier>(cacheName);

    private static RedisTier CreateTier(IServiceProvider services, string cacheName)
    {
        RedisConnections connections = services.GetRequiredService<RedisConnections>();
        ILoggerFactory? loggers = services.GetService<ILoggerFactory>();
        TimeProvider? time = services.GetService<TimeProvider>();
        if (services.GetKeyedService<ExplicitRedis>(cacheName) is not null)
        {
            RedisCacheOptions configured = services.GetRequiredService<IOptionsMonitor<RedisCacheOptions>>().Get(CacheOptionsName(cacheName));
            MultiplexerSource source = configured.ConnectionMultiplexerFactory is { } factory ? connections.ForFactory(factory)
                : configured.ConfigurationOptions is { } options ? connections.ForConfiguration(options)
                : configured.Configuration is { Length: > 0 } text ? connections.ForConfiguration(text)
                : throw new InvalidOperationException(
                    $"WithRedis(...) on the cache '{cacheName}' needs RedisCacheOptions.Configuration (a StackExchange.Redis configuration string), ConfigurationOptions or ConnectionMultiplexerFactory.");
            return new RedisTier(NewRedisCache(source, configured.InstanceName, configured.ProfilingSession), source, configured.InstanceName, loggers, time);
        }

        // Reuse what the application registered: its RedisCache (whose multiplexer ShareRedisCacheConnection made
        // shareable), or its IConnectionMultiplexer under a RedisCache of our own.
        if (services.GetService<IDistributedCache>() is RedisCache appCache)
        {
            RedisCacheOptions appOptions = services.GetRequiredService<IOptions<RedisCacheOptions>>().Value;
            MultiplexerSource source = connections.ForFactory(appOptions.ConnectionMultiplexerFactory
                ?? throw new InvalidOperationException("The application's RedisCacheOptions has no connection: set Configuration or ConnectionMultiplexerFactory in AddStackExchangeRedisCache(...)."));
            return new RedisTier(appCache, source, appOptions.InstanceName, loggers, time);
        }

        if (services.GetService<IConnectionMultiplexer>() is { } multiplexer)
        {
            var source = new MultiplexerSource(multiplexer, "the application's IConnectionMultiplexer");
            return new RedisTier(NewRedisCache(source, null, null), source, null, loggers, time);
        }

        throw new InvalidOperationException(
            $"The cache '{cacheName}' uses Redis (WithRedis(), WithBackplane() or WithRedisLoadLock()) but no Redis is configured: call .WithRedis(\"host:port\") on its builder, " +
            "or register AddStackExchangeRedisCache(...) or an IConnectionMultiplexer singleton first.");
    }

    /// <summary>
    /// A <see cref="RedisCache"/> on <paramref name="source"/>'s multiplexer. Nobody disposes it: disposing a
    /// <see cref="RedisCache"/> closes its multiplexer, which belongs to <see cref="RedisConnections"/> or to the application.
    /// </summary>
    private static RedisCache NewRedisCache(MultiplexerSource source, string? instanceName, Func<StackExchange.Redis.Profiling.ProfilingSession>? profiling) =>
        new(new RedisCacheOptions
        {
            ConnectionMultiplexerFactory = source.GetAsync,
            InstanceName = instanceName,
            ProfilingSession = profiling,
        });

    /// <summary>A marker: the cache's Redis comes from <c>WithRedis(...)</c> options.</summary>
    private sealed class ExplicitRedis;
}

/// <summary>
/// Makes the <see cref="RedisCache"/> an application registered with <c>AddStackExchangeRedisCache</c> share one
/// multiplexer with CacheGuard: a configuration is connected once (by <see cref="RedisConnections"/>, which every cache
/// configured with the same string shares), an application's factory is called once, and a <see cref="RedisCache"/>
/// given no connection at all uses the container's <see cref="IConnectionMultiplexer"/>.
/// </summary>
internal sealed class ShareRedisCacheConnection(IServiceProvider services) : IPostConfigureOptions<RedisCacheOptions>
{
    public void PostConfigure(string? name, RedisCacheOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (name != Options.DefaultName)
        {
            return; // only the application's RedisCache: CacheGuard's own are built with their source already
        }

        RedisConnections connections = services.GetRequiredService<RedisConnections>();
        if (options.ConnectionMultiplexerFactory is { } factory)
        {
            options.ConnectionMultiplexerFactory = connections.ForFactory(factory).GetAsync;
        }
        else if (options.ConfigurationOptions is { } configurationOptions)
        {
            options.ConnectionMultiplexerFactory = connections.ForConfiguration(configurationOptions).GetAsync;
        }
        else if (options.Configuration is { Length: > 0 } configuration)
        {
            options.ConnectionMultiplexerFactory = connections.ForConfiguration(configuration).GetAsync;
        }
        else if (services.GetService<IConnectionMultiplexer>() is { } multiplexer)
        {
            options.ConnectionMultiplexerFactory = () => Task.FromResult(multiplexer);
        }
    }
}
