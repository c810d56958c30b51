using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace CacheGuard.DocsSnippets;

// Snippets of docs/redis.md.
public static class RedisPage
{
    public static void TlDr(WebApplicationBuilder builder)
    {
        builder.Services
            .AddCoalescingCache(o => o.DefaultExpiration = TimeSpan.FromMinutes(5))
            .WithRedis(builder.Configuration.GetConnectionString("redis")!); // a StackExchange.Redis configuration string
    }

    public static void ReuseRedisCache(WebApplicationBuilder builder)
    {
        // Your own RedisCache: CacheGuard uses it as L2, and its connection for the backplane and the lock.
        builder.Services.AddStackExchangeRedisCache(o =>
        {
            o.Configuration = builder.Configuration.GetConnectionString("redis");
            o.InstanceName = "orders:";
        });
        builder.Services.AddCoalescingCache().WithBackplane().WithRedisLoadLock();
    }

    public static void ReuseMultiplexer(WebApplicationBuilder builder)
    {
        // Your own multiplexer: CacheGuard puts a RedisCache on it, and never closes it.
        builder.Services.AddSingleton<IConnectionMultiplexer>(_ => ConnectionMultiplexer.Connect(builder.Configuration.GetConnectionString("redis")!));
        builder.Services.AddCoalescingCache().WithRedis();
    }

    public static void ClusterAndSentinel(WebApplicationBuilder builder)
    {
        // Redis Cluster: name some (or all) masters; the client discovers the rest and routes each key to its slot's master.
        builder.Services.AddCoalescingCache().WithRedis("redis-0:6379,redis-1:6379,redis-2:6379,password=...");

        // Sentinel: name the sentinels and the service; the client follows the current primary.
        builder.Services.AddCoalescingCache("orders").WithRedis("sentinel-0:26379,sentinel-1:26379,serviceName=mymaster,password=...");
    }

    public static void Tls(WebApplicationBuilder builder)
    {
        var redis = ConfigurationOptions.Parse("redis.internal:6380,ssl=true,password=...");
        redis.TrustIssuer("/etc/redis/ca.pem"); // chains must end at this CA; host name and validity are still checked
        builder.Services.AddCoalescingCache().WithRedis(o => o.ConfigurationOptions = redis);
    }
}
