using CacheGuard;
using CacheGuard.Internal;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers CacheGuard's <see cref="ICoalescingCache"/> in a service collection.</summary>
public static class CoalescingCacheServiceCollectionExtensions
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
    /// <remarks>Options are validated when the host starts (or when the cache is first resolved without a host); invalid values throw <see cref="OptionsValidationException"/> naming the option.</remarks>
    public static ICoalescingCacheBuilder AddCoalescingCache(this IServiceCollection services, Action<CoalescingCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        OptionsBuilder<CoalescingCacheOptions> options = services.AddOptions<CoalescingCacheOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CoalescingCacheOptions>, CoalescingCacheOptionsValidator>());
        services.TryAddSingleton<ICoalescingCache>(static sp => DefaultCoalescingCache.Create(sp, Options.Options.DefaultName));
        return new CoalescingCacheBuilder(services, Options.Options.DefaultName);
    }
}
