using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.DocsSnippets;

// Snippets of the feature pages: circuit-breaker, early-refresh, fail-safe, loader-timeouts, tags, try-get,
// batch-loading and load-context.
public static class FeaturePages
{
    public static void CircuitBreaker(IServiceCollection services)
    {
        services.AddCoalescingCache(o =>
        {
            o.DistributedCacheCircuitBreakerThreshold = 5;                     // failures...
            o.DistributedCacheCircuitBreakerWindow = TimeSpan.FromSeconds(10); // ...within this window open it
            o.DistributedCacheCircuitBreakerDuration = TimeSpan.FromSeconds(15); // TimeSpan.Zero turns it off
        });
    }

    public static void EarlyRefresh(IServiceCollection services)
    {
        services.AddCoalescingCache(o => o.EagerRefreshThreshold = 0.9);   // refresh after 90 % of the lifetime
        // or
        services.AddCoalescingCache(o => o.ProbabilisticEarlyRefresh = true);
    }

    public static void FailSafe(IServiceCollection services)
    {
        services.AddCoalescingCache(o =>
        {
            o.FailSafe = true;                                       // off by default
            o.FailSafeMaxDuration = TimeSpan.FromHours(1);           // how long past expiry a value may stand in
            o.FailSafeThrottleDuration = TimeSpan.FromSeconds(30);   // how long a stale value is re-armed after a failure
        });
    }

    public static void LoaderTimeouts(IServiceCollection services)
    {
        services.AddCoalescingCache(o =>
        {
            o.FailSafe = true;
            o.LoaderSoftTimeout = TimeSpan.FromMilliseconds(200);
            o.LoaderHardTimeout = TimeSpan.FromSeconds(5);
        });
    }

    public static async Task Tags(ICoalescingCache cache, int id, int customerId)
    {
        await cache.GetOrLoadAsync($"order:{id}", id, static (id, ct) => LoadOrderAsync(id, ct),
            new CacheEntryOptions { Tags = [$"customer:{customerId}"] });

        await cache.RemoveByTagAsync($"customer:{customerId}");
    }

    public static async Task<User?> TryGet(ICoalescingCache cache, int id)
    {
        CacheLookup<User?> lookup = await cache.TryGetAsync<User?>($"user:{id}");
        switch (lookup.Status)
        {
            case CacheLookupStatus.Found: return lookup.Value;
            case CacheLookupStatus.CachedNotFound: return null;           // known not to exist
            case CacheLookupStatus.Miss: return await SlowPathAsync(id);  // nobody knows
        }

        return null;
    }

    public static async Task BatchLoading(ICoalescingCache cache, BatchProductDb db, int[] ids)
    {
        IReadOnlyDictionary<string, Product?> products = await cache.GetOrLoadManyAsync<Product?>(
            ids.Select(id => $"product:{id}"),
            async (missingKeys, ct) => await db.FindProductsAsync(missingKeys, ct)); // returns the ones it found
    }

    private static Task<string> LoadOrderAsync(int id, CancellationToken ct) => Task.FromResult($"order-{id}");

    private static Task<User?> SlowPathAsync(int id) => Task.FromResult<User?>(null);
}

public static class LoadContextPage
{
    // The page's lambda is static: the content service it calls is a static member here.
#pragma warning disable IDE1006, SA1300
    private static readonly Cms cms = new();
#pragma warning restore IDE1006, SA1300

    public static async Task Use(ICoalescingCache cache, int id)
    {
        Article article = await cache.GetOrLoadAsync<int, Article>($"article:{id}", id,
            static async (id, ctx, ct) =>
            {
                if (ctx.HasStaleValue)
                {
                    // Conditional request: the source says whether our copy is still current.
                    if (!await cms.HasChangedSinceAsync(id, ctx.StaleValue!.ETag, ct))
                    {
                        return ctx.NotModified();                 // re-armed with fresh lifetimes
                    }
                }

                Article fresh = await cms.GetAsync(id, ct);
                ctx.Expiration = fresh.IsDraft ? TimeSpan.FromSeconds(30) : TimeSpan.FromHours(6);
                ctx.Tags = [$"author:{fresh.AuthorId}"];
                if (fresh.IsPreview)
                {
                    ctx.DoNotCache();                             // still returned to every waiting caller
                }

                return fresh;
            });
    }
}

public sealed record Article(int Id, string ETag, bool IsDraft, bool IsPreview, int AuthorId);

public sealed class Cms
{
    public Task<bool> HasChangedSinceAsync(int id, string etag, CancellationToken ct) => Task.FromResult(true);

    public Task<Article> GetAsync(int id, CancellationToken ct) => Task.FromResult(new Article(id, "e1", false, false, 1));
}

public sealed class BatchProductDb
{
    public Task<IReadOnlyDictionary<string, Product?>> FindProductsAsync(IReadOnlyList<string> keys, CancellationToken ct) =>
        Task.FromResult<IReadOnlyDictionary<string, Product?>>(keys.ToDictionary(k => k, k => (Product?)new Product(0, k)));
}
