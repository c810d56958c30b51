using LazyCache;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using ZiggyCreatures.Caching.Fusion;

namespace CacheGuard.DocsSnippets;

public static class Migrating
{
    public static void OneLine(WebApplicationBuilder builder)
    {
        // before
        builder.Services.AddHybridCache();
        // after: the same HybridCache, served by CacheGuard
        builder.Services.AddCoalescingCache().AsHybridCache();
    }

    public static async Task MemoryCacheBefore(IMemoryCache memoryCache, ProductDb db, int id)
    {
        Product? product = await memoryCache.GetOrCreateAsync($"product:{id}", entry =>
        {
            entry.AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(5);
            return db.FindAsync(id, CancellationToken.None);
        });
        memoryCache.Remove($"product:{id}");
    }

    public static async Task After(ICoalescingCache cache, ProductDb db, int id, CancellationToken cancellationToken)
    {
        Product? product = await cache.GetOrLoadAsync(
            $"product:{id}",
            ct => db.FindAsync(id, ct),
            new CacheEntryOptions { Expiration = TimeSpan.FromMinutes(5) },
            cancellationToken);
        await cache.RemoveAsync($"product:{id}", cancellationToken);
    }

    public static async Task LazyCacheBefore(IAppCache appCache, ProductDb db, int id)
    {
        Product? product = await appCache.GetOrAddAsync($"product:{id}", () => db.FindAsync(id, CancellationToken.None), DateTimeOffset.UtcNow.AddMinutes(5));
        appCache.Remove($"product:{id}");
    }

    public static async Task FusionCacheBefore(IFusionCache fusionCache, ProductDb db, int id, CancellationToken cancellationToken)
    {
        Product? product = await fusionCache.GetOrSetAsync<Product?>($"product:{id}", ct => db.FindAsync(id, ct), TimeSpan.FromMinutes(5), cancellationToken);
        await fusionCache.RemoveAsync($"product:{id}", token: cancellationToken);
    }
}

public sealed class CatalogService(HybridCache cache, ProductDb db)
{
    public ValueTask<Product?> GetAsync(int id, CancellationToken ct) =>
        cache.GetOrCreateAsync(
            $"product:{id}",
            async token => await db.FindAsync(id, token),
            new HybridCacheEntryOptions { Expiration = TimeSpan.FromMinutes(5), LocalCacheExpiration = TimeSpan.FromMinutes(1) },
            tags: ["catalog"],
            cancellationToken: ct);
}
