using CacheGuard;
using CacheGuard.Internal;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Exposes a CacheGuard cache as Microsoft's <see cref="HybridCache"/>.</summary>
public static class CoalescingCacheHybridCacheExtensions
{
    /// <summary>
    /// Registers the cache being configured as the implementation of <see cref="HybridCache"/>, replacing any other
    /// registration (such as <c>AddHybridCache()</c>'s), so code written against the abstraction runs on CacheGuard.
    /// </summary>
    /// <param name="builder">The cache builder returned by <c>AddCoalescingCache</c>.</param>
    /// <returns>The same builder.</returns>
    /// <remarks>
    /// <para>For the unnamed cache, <see cref="HybridCache"/> itself is registered; for a named cache, a keyed
    /// <see cref="HybridCache"/> under the same name (<c>[FromKeyedServices("users")] HybridCache</c>).</para>
    /// <para><see cref="HybridCacheEntryOptions.Expiration"/>, <see cref="HybridCacheEntryOptions.LocalCacheExpiration"/>,
    /// <see cref="HybridCacheEntryOptions.Flags"/> and tags map to <see cref="CacheEntryOptions"/>; values are coalesced,
    /// jittered and serialized (with the <see cref="IHybridCacheSerializer{T}"/>s in the container) as
    /// <see cref="ICoalescingCache"/> does. Differences from Microsoft's implementation: a <see langword="null"/> value is
    /// cached for <see cref="CoalescingCacheOptions.NegativeExpiration"/> rather than the entry's expiration; an L1 hit
    /// returns the cached instance rather than a fresh copy; an invalid key throws instead of bypassing the cache; and
    /// <c>RemoveByTagAsync("*")</c> throws <see cref="NotSupportedException"/>.</para>
    /// </remarks>
    public static ICoalescingCacheBuilder AsHybridCache(this ICoalescingCacheBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        string name = builder.Name;
        if (name.Length == 0)
        {
            builder.Services.RemoveAll<HybridCache>();
            builder.Services.AddSingleton<HybridCache>(static sp => new CoalescingHybridCache(sp.GetRequiredService<ICoalescingCache>()));
        }
        else
        {
            builder.Services.RemoveAllKeyed<HybridCache>(name);
            builder.Services.AddKeyedSingleton<HybridCache>(name, static (sp, key) => new CoalescingHybridCache(sp.GetRequiredKeyedService<ICoalescingCache>(key)));
        }

        return builder;
    }
}
