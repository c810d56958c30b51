using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Internal;

/// <summary>
/// Resolves caches from the container: the unnamed one as <see cref="ICoalescingCache"/>, named ones as keyed
/// services, so <c>GetCache("users")</c> and <c>[FromKeyedServices("users")]</c> return the same instance.
/// </summary>
internal sealed class CoalescingCacheProvider(IServiceProvider services) : ICoalescingCacheProvider
{
    public ICoalescingCache GetCache(string name)
    {
        if (TryGetCache(name, out ICoalescingCache? cache))
        {
            return cache;
        }

        throw new InvalidOperationException(name.Length == 0
            ? "No unnamed cache is registered: call services.AddCoalescingCache()."
            : $"No cache named '{name}' is registered: call services.AddCoalescingCache(\"{name}\", ...).");
    }

    public bool TryGetCache(string name, [NotNullWhen(true)] out ICoalescingCache? cache)
    {
        ArgumentNullException.ThrowIfNull(name);
        cache = name.Length == 0
            ? services.GetService<ICoalescingCache>()
            : services.GetKeyedService<ICoalescingCache>(name);
        return cache is not null;
    }
}
