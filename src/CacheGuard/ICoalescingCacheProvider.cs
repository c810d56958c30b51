using System.Diagnostics.CodeAnalysis;

namespace CacheGuard;

/// <summary>Resolves the caches registered with <c>AddCoalescingCache</c> by name.</summary>
/// <remarks>
/// Each named cache (<c>services.AddCoalescingCache("users", o => ...)</c>) is independent: its own options, its own
/// in-process cache (L1), its own key space in L2 (derived from the name, after <see cref="CoalescingCacheOptions.KeyPrefix"/>)
/// and its own <c>cache.name</c> in metrics. A named cache is also a keyed service:
/// <c>[FromKeyedServices("users")] ICoalescingCache cache</c>. Registered as a singleton.
/// </remarks>
public interface ICoalescingCacheProvider
{
    /// <summary>Gets the cache registered under <paramref name="name"/>.</summary>
    /// <param name="name">The name given to <c>AddCoalescingCache</c>; <see cref="string.Empty"/> (<see cref="Microsoft.Extensions.Options.Options.DefaultName"/>) for the unnamed cache.</param>
    /// <returns>The cache; the same instance on every call.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException">No cache is registered under <paramref name="name"/>.</exception>
    ICoalescingCache GetCache(string name);

    /// <summary>Gets the cache registered under <paramref name="name"/>, if there is one.</summary>
    /// <param name="name">The name given to <c>AddCoalescingCache</c>; <see cref="string.Empty"/> for the unnamed cache.</param>
    /// <param name="cache">The cache, or <see langword="null"/> when none is registered under that name.</param>
    /// <returns>Whether a cache is registered under <paramref name="name"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is <see langword="null"/>.</exception>
    bool TryGetCache(string name, [NotNullWhen(true)] out ICoalescingCache? cache);
}
