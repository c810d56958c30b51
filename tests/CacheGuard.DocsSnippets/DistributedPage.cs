using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.DocsSnippets;

// Snippets of docs/distributed.md.
public static class DistributedPage
{
    public static void Registration(WebApplicationBuilder builder)
    {
        builder.Services
            .AddCoalescingCache(o =>
            {
                o.KeyPrefix = "orders:";
                o.DistributedLoadLock = true;                          // one load per key across the fleet (off by default)
                o.DistributedLoadLockTimeout = TimeSpan.FromSeconds(10); // the longest a node waits for another's load
            })
            .WithRedis(builder.Configuration.GetConnectionString("redis")!)   // L2, and registers the lock (left off)
            .WithBackplane()                                                   // L1 coherence over pub/sub
            .WithRedisLoadLock(o => o.LeaseDuration = TimeSpan.FromSeconds(5)); // optional: turns the lock on and tunes it
    }

    // README.md, "Many nodes, with Redis".
    public static void Readme(WebApplicationBuilder builder)
    {
        builder.Services.AddCoalescingCache(o => o.DefaultExpiration = TimeSpan.FromMinutes(10))
            .WithRedis("redis:6379")     // L2 (CacheGuard.Redis)
            .WithBackplane()             // every node's L1 hears of every write
            .WithRedisLoadLock();        // one load per cold key across the fleet
    }
}
