using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.DocsSnippets;

public static class GettingStarted
{
    public static void Register(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Services.AddCoalescingCache(o => o.DefaultExpiration = TimeSpan.FromMinutes(10));
        builder.Services.AddSingleton<ProductDb>();
        builder.Services.AddSingleton<ProductRepository>();

        var app = builder.Build();
        app.MapGet("/products/{id:int}", (int id, ProductRepository products, CancellationToken ct) => products.GetAsync(id, ct));
        app.Run();
    }

    public static void FromConfiguration(WebApplicationBuilder builder)
    {
        builder.Services.AddCoalescingCache(builder.Configuration.GetSection("CacheGuard"));
    }
}

public sealed class ProductRepository(ICoalescingCache cache, ProductDb db)
{
    public ValueTask<Product?> GetAsync(int id, CancellationToken ct) =>
        cache.GetOrLoadAsync(
            $"product:{id}",
            (db, id),                                          // state for the loader: no closure allocated
            static (s, token) => s.db.FindAsync(s.id, token),  // runs once per key, however many callers wait
            cancellationToken: ct);

    public async Task RenameAsync(int id, string name, CancellationToken ct)
    {
        await db.RenameAsync(id, name, ct);
        await cache.RemoveAsync($"product:{id}", ct);          // the next read loads the new row
    }
}
