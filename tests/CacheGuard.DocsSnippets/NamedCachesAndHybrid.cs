using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.DocsSnippets;

public static class NamedCaches
{
    public static void Register(IServiceCollection services)
    {
        services.AddCoalescingCache(o => o.DefaultExpiration = TimeSpan.FromMinutes(5));     // the unnamed cache
        services.AddCoalescingCache("users", o => o.DefaultExpiration = TimeSpan.FromHours(1))
            .WithRedis("redis.internal:6379");                                               // only "users" uses Redis
        services.AddCoalescingCache("prices", o => o.DefaultExpiration = TimeSpan.FromSeconds(10));
    }
}

public sealed class UserDirectory([FromKeyedServices("users")] ICoalescingCache users, UserDb db)
{
    public ValueTask<User?> FindAsync(int id, CancellationToken ct) =>
        users.GetOrLoadAsync($"{id}", (db, id), static (s, token) => s.db.FindUserAsync(s.id, token), cancellationToken: ct);
}

public sealed class PriceBoard(ICoalescingCacheProvider caches)
{
    private readonly ICoalescingCache _prices = caches.GetCache("prices");
}

public static class HybridAdapter
{
    public static async Task Use(IServiceCollection services, IServiceProvider provider)
    {
        services.AddCoalescingCache(o => o.FailSafe = true)
            .WithDistributedCache(sp => sp.GetRequiredService<IDistributedCache>())
            .AsHybridCache();

        // anywhere: the abstraction, unchanged
        HybridCache hybrid = provider.GetRequiredService<HybridCache>();
        int stock = await hybrid.GetOrCreateAsync("stock:42", static _ => ValueTask.FromResult(17));
    }
}
