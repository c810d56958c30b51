using CacheGuard;
using CacheGuard.Internal;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers CacheGuard's <see cref="ICoalescingCache"/> in a service collection.</summary>
public static partial class CoalescingCacheServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ICoalescingCache"/> as a singleton. Its L1 is CacheGuard's own in-process cache; its L2 is
    /// the <see cref="Microsoft.Extensions.Caching.Distributed.IDistributedCache"/> chosen on the returned builder or,
    /// failing that, the one registered in the container (an in-memory <c>MemoryDistributedCache</c> is ignored, as it
    /// would only duplicate L1). With neither, the cache runs L1-only: the embedded default, no server needed.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the options, or <see langword="null"/> for the defaults.</param>
    /// <returns>A builder to add the distributed tier, serializers and other features.</returns>
    /// <remarks>
    /// Options are validated when the host starts (or when the cache is first resolved without a host); invalid values
    /// throw <see cref="OptionsValidationException"/> naming the option. Calling this again adds to the configuration
    /// of the same cache. <see cref="ICoalescingCacheProvider"/> is registered too.
    /// </remarks>
    public static ICoalescingCacheBuilder AddCoalescingCache(this IServiceCollection services, Action<CoalescingCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        return Register(services, Options.Options.DefaultName, configure);
    }

    /// <summary>
    /// Registers an independent cache named <paramref name="name"/>: its own options, its own in-process cache (L1), its
    /// own L2 key prefix and its own <c>cache.name</c> in metrics. Resolve it as a keyed service
    /// (<c>[FromKeyedServices("users")] ICoalescingCache</c>) or through <see cref="ICoalescingCacheProvider.GetCache(string)"/>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="name">The cache's name: not empty or whitespace.</param>
    /// <param name="configure">Configures the options, or <see langword="null"/> for the defaults.</param>
    /// <returns>A builder for this cache: <c>.WithDistributedCache(...)</c> and the other builder methods configure only this cache.</returns>
    /// <remarks>
    /// Before <paramref name="configure"/> runs, <see cref="CoalescingCacheOptions.Name"/> is set to <paramref name="name"/>
    /// (set it to report another name in metrics and logs). The cache's L2 keys live in a key space of its own, derived from
    /// <paramref name="name"/> (<c>__cacheguard:cache:{length}:{name}:{key}</c> after <see cref="CoalescingCacheOptions.KeyPrefix"/>),
    /// so no key of another cache sharing the L2 can reach them. The unnamed cache's keys are stored as they are.
    /// </remarks>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or whitespace.</exception>
    public static ICoalescingCacheBuilder AddCoalescingCache(this IServiceCollection services, string name, Action<CoalescingCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return Register(services, name, configure);
    }

    private static CoalescingCacheBuilder Register(IServiceCollection services, string name, Action<CoalescingCacheOptions>? configure)
    {
        bool unnamed = name.Length == 0;
        bool first = !IsRegistered(services, name);
        OptionsBuilder<CoalescingCacheOptions> options = services.AddOptions<CoalescingCacheOptions>(name);
        if (first)
        {
            if (!unnamed)
            {
                // Registered once, before any user configuration, so a second AddCoalescingCache(name) never resets it.
                options.Configure(o =>
                {
                    o.Name = name;
                    o.RegisteredName = name;
                });
            }

            options.ValidateOnStart();
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CoalescingCacheOptions>, CoalescingCacheOptionsValidator>());
        services.TryAddSingleton(ConfigurationPaths(services));
        services.TryAddSingleton<ICoalescingCacheProvider, CoalescingCacheProvider>();
        if (unnamed)
        {
            services.TryAddSingleton<ICoalescingCache>(static sp => DefaultCoalescingCache.Create(sp, Options.Options.DefaultName));
        }
        else if (first)
        {
            services.AddKeyedSingleton<ICoalescingCache>(name, static (sp, key) => DefaultCoalescingCache.Create(sp, (string)key!));
        }

        return new CoalescingCacheBuilder(services, name);
    }

    private static bool IsRegistered(IServiceCollection services, string name)
    {
        foreach (ServiceDescriptor descriptor in services)
        {
            if (descriptor.ServiceType == typeof(ICoalescingCache)
                && (name.Length == 0 ? !descriptor.IsKeyedService : descriptor.IsKeyedService && Equals(descriptor.ServiceKey, name)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The one registry of configuration paths in <paramref name="services"/>, added on first use.</summary>
    private static CoalescingCacheConfigurationPaths ConfigurationPaths(IServiceCollection services)
    {
        foreach (ServiceDescriptor descriptor in services)
        {
            if (descriptor.ServiceType == typeof(CoalescingCacheConfigurationPaths) && !descriptor.IsKeyedService
                && descriptor.ImplementationInstance is CoalescingCacheConfigurationPaths paths)
            {
                return paths;
            }
        }

        return new CoalescingCacheConfigurationPaths();
    }
}
