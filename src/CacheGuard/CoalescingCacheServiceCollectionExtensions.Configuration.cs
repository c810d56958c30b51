using CacheGuard;
using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers CacheGuard's <see cref="ICoalescingCache"/> with options bound from configuration.</summary>
public static partial class CoalescingCacheServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ICoalescingCache"/> as a singleton, as <see cref="AddCoalescingCache(IServiceCollection, Action{CoalescingCacheOptions}?)"/>
    /// does, with <see cref="CoalescingCacheOptions"/> bound from <paramref name="configuration"/> (for example
    /// <c>configuration.GetSection("CacheGuard")</c>).
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section holding the options: <c>"DefaultExpiration": "00:10:00"</c>, <c>"KeyPrefix": "orders:"</c>...</param>
    /// <param name="configure">Runs after binding, or <see langword="null"/>.</param>
    /// <returns>A builder to add the distributed tier, serializers and other features.</returns>
    /// <remarks>
    /// Validation messages name the configuration path (<c>CacheGuard:DefaultExpiration must be greater than zero...</c>).
    /// A key in the section that matches no option is an error too, so a misspelt option does not pass silently. The
    /// cache reads its options once, when it is created: later changes to the configuration do not reach it.
    /// </remarks>
    public static ICoalescingCacheBuilder AddCoalescingCache(this IServiceCollection services, IConfiguration configuration, Action<CoalescingCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        return Bind(services.AddCoalescingCache(), configuration, configure);
    }

    /// <summary>
    /// Registers the independent cache <paramref name="name"/>, as <see cref="AddCoalescingCache(IServiceCollection, string, Action{CoalescingCacheOptions}?)"/>
    /// does, with its options bound from <paramref name="configuration"/>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="name">The cache's name: not empty or whitespace.</param>
    /// <param name="configuration">The section holding this cache's options, for example <c>configuration.GetSection("CacheGuard:Caches:users")</c>.</param>
    /// <param name="configure">Runs after binding, or <see langword="null"/>.</param>
    /// <returns>A builder for this cache.</returns>
    /// <remarks>The name and key-prefix defaults of a named cache apply before binding, so the section can override them.</remarks>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or whitespace.</exception>
    public static ICoalescingCacheBuilder AddCoalescingCache(this IServiceCollection services, string name, IConfiguration configuration, Action<CoalescingCacheOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        return Bind(services.AddCoalescingCache(name), configuration, configure);
    }

    private static ICoalescingCacheBuilder Bind(ICoalescingCacheBuilder builder, IConfiguration configuration, Action<CoalescingCacheOptions>? configure)
    {
        builder.Services.AddOptions<CoalescingCacheOptions>(builder.Name).Bind(configuration, static binder => binder.ErrorOnUnknownConfiguration = true);
        if (configure is not null)
        {
            builder.Services.Configure(builder.Name, configure);
        }

        ConfigurationPaths(builder.Services).Record(builder.Name, (configuration as IConfigurationSection)?.Path ?? string.Empty);
        return builder;
    }
}
