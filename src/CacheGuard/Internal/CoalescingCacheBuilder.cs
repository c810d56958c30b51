using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Internal;

internal sealed class CoalescingCacheBuilder(IServiceCollection services, string name) : ICoalescingCacheBuilder
{
    public IServiceCollection Services { get; } = services;

    public string Name { get; } = name;
}
