using CacheGuard;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Configures the cache registered by <c>AddCoalescingCache</c>.</summary>
public static class CoalescingCacheBuilderExtensions
{
    /// <summary>Uses the distributed cache made by <paramref name="factory"/> as L2, whatever else the container holds.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">Creates the L2 from the container, once, when the cache is created.</param>
    /// <returns>The same builder.</returns>
    public static ICoalescingCacheBuilder WithDistributedCache(this ICoalescingCacheBuilder builder, Func<IServiceProvider, IDistributedCache> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.Configure<CoalescingCacheOptions>(builder.Name, o =>
        {
            o.DistributedCacheFactory = factory;
            o.DisableDistributedCache = false;
        });
        return builder;
    }

    /// <summary>Uses <paramref name="distributedCache"/> as L2, whatever else the container holds.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="distributedCache">The L2 instance.</param>
    /// <returns>The same builder.</returns>
    public static ICoalescingCacheBuilder WithDistributedCache(this ICoalescingCacheBuilder builder, IDistributedCache distributedCache)
    {
        ArgumentNullException.ThrowIfNull(distributedCache);
        return builder.WithDistributedCache(_ => distributedCache);
    }

    /// <summary>
    /// Reads many L2 keys in one round trip through <paramref name="factory"/>'s reader in <c>GetOrLoadManyAsync</c>, for an
    /// L2 that does not implement <see cref="IBatchDistributedCache"/> itself (CacheGuard.Redis registers one for
    /// Microsoft's <c>RedisCache</c>).
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">Creates the reader, once, when the cache is created. It must read the same entries as the L2.</param>
    /// <returns>The same builder.</returns>
    public static ICoalescingCacheBuilder WithBatchDistributedCache(this ICoalescingCacheBuilder builder, Func<IServiceProvider, IBatchDistributedCache> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.Configure<CoalescingCacheOptions>(builder.Name, o => o.BatchDistributedCacheFactory = factory);
        return builder;
    }

    /// <summary>
    /// Lets <paramref name="factory"/>'s <see cref="IDistributedCacheHealth"/> tell the cache when its L2 cannot be reached, so
    /// that no caller waits for an L2 call meanwhile (CacheGuard.Redis registers one from the connection's state).
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">Creates the health source, once, when the cache is created.</param>
    /// <returns>The same builder.</returns>
    public static ICoalescingCacheBuilder WithDistributedCacheHealth(this ICoalescingCacheBuilder builder, Func<IServiceProvider, IDistributedCacheHealth> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.Configure<CoalescingCacheOptions>(builder.Name, o => o.HealthFactory = factory);
        return builder;
    }

    /// <summary>Runs the cache on L1 only, even if the container has an <see cref="IDistributedCache"/>.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <returns>The same builder.</returns>
    public static ICoalescingCacheBuilder WithoutDistributedCache(this ICoalescingCacheBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure<CoalescingCacheOptions>(builder.Name, static o =>
        {
            o.DistributedCacheFactory = null;
            o.DisableDistributedCache = true;
        });
        return builder;
    }

    /// <summary>Keeps this cache's L1 coherent with other nodes' through <paramref name="factory"/>'s backplane.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">Creates the backplane, once, when the cache is created.</param>
    /// <returns>The same builder.</returns>
    public static ICoalescingCacheBuilder WithBackplane(this ICoalescingCacheBuilder builder, Func<IServiceProvider, ICacheBackplane> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.Configure<CoalescingCacheOptions>(builder.Name, o => o.BackplaneFactory = factory);
        return builder;
    }

    /// <summary>
    /// Provides the lock used when <see cref="CoalescingCacheOptions.DistributedLoadLock"/> is on; pass
    /// <paramref name="enable"/> to turn that option on as well.
    /// </summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">Creates the lock, once, when the cache is created.</param>
    /// <param name="enable">Whether to turn <see cref="CoalescingCacheOptions.DistributedLoadLock"/> on.</param>
    /// <returns>The same builder.</returns>
    public static ICoalescingCacheBuilder WithDistributedLoadLock(this ICoalescingCacheBuilder builder, Func<IServiceProvider, IDistributedLoadLock> factory, bool enable = true)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.Configure<CoalescingCacheOptions>(builder.Name, o =>
        {
            o.LoadLockFactory = factory;
            o.DistributedLoadLock |= enable;
        });
        return builder;
    }

    /// <summary>Serializes <typeparamref name="T"/> for L2 with <paramref name="serializer"/> instead of System.Text.Json.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="builder">The cache builder.</param>
    /// <param name="serializer">The serializer.</param>
    /// <returns>The same builder.</returns>
    public static ICoalescingCacheBuilder WithSerializer<T>(this ICoalescingCacheBuilder builder, IHybridCacheSerializer<T> serializer)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(serializer);
        builder.Services.AddSingleton(serializer);
        return builder;
    }

    /// <summary>Adds a serializer factory, consulted (most recently added first) for types without a registered serializer.</summary>
    /// <param name="builder">The cache builder.</param>
    /// <param name="factory">The factory.</param>
    /// <returns>The same builder.</returns>
    public static ICoalescingCacheBuilder WithSerializerFactory(this ICoalescingCacheBuilder builder, IHybridCacheSerializerFactory factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.AddSingleton(factory);
        return builder;
    }
}
