// Stand-ins with the shape of other libraries' calls, so docs/migrating.md's "before" snippets compile here without
// those packages (they are not in this build's package source). Only the members the page shows; not their code.
#pragma warning disable CA1716, CA1711, CA1040, CA1034

using Microsoft.Extensions.Caching.Hybrid;

namespace LazyCache
{
    public interface IAppCache
    {
        Task<T> GetOrAddAsync<T>(string key, Func<Task<T>> addItemFactory, DateTimeOffset expires);

        void Remove(string key);
    }
}

namespace ZiggyCreatures.Caching.Fusion
{
    public interface IFusionCache
    {
        ValueTask<TValue> GetOrSetAsync<TValue>(string key, Func<CancellationToken, Task<TValue>> factory, TimeSpan duration, CancellationToken token = default);

        ValueTask RemoveAsync(string key, FusionCacheEntryOptions? options = null, CancellationToken token = default);
    }

    public sealed class FusionCacheEntryOptions;
}

namespace Microsoft.Extensions.DependencyInjection
{
    public static class SnippetShimExtensions
    {
        // Microsoft.Extensions.Caching.Hybrid's registration; the HybridCache class itself is the real one.
        public static IServiceCollection AddHybridCache(this IServiceCollection services) =>
            services.AddSingleton<HybridCache>(static _ => throw new NotSupportedException("a shim for docs snippets"));

        public static IServiceCollection AddLazyCache(this IServiceCollection services) => services;

        public static IServiceCollection AddFusionCache(this IServiceCollection services) => services;
    }
}
