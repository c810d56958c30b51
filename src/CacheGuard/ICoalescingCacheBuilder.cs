using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard;

/// <summary>
/// Returned by <c>AddCoalescingCache</c>: the place where the distributed tier, serializers and later features plug in.
/// </summary>
public interface ICoalescingCacheBuilder
{
    /// <summary>Gets the service collection the cache is registered in.</summary>
    IServiceCollection Services { get; }

    /// <summary>Gets the options name of the cache being configured (<see cref="Microsoft.Extensions.Options.Options.DefaultName"/> for the unnamed cache).</summary>
    string Name { get; }
}
