using CacheGuard;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>Registration: one shared multiplexer per process, whether CacheGuard connects it or the application registered it.</summary>
public class RegistrationTests
{
    [Test]
    public async Task WithRedis_TwoCachesWithEveryFeatureInUse_HoldOneInteractiveAndOneSubscriberConnection()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        string name = "cg-count-" + Guid.NewGuid().ToString("N")[..8];
        string configuration = server.Configuration + ",name=" + name;
        var services = new ServiceCollection();
        services.AddCoalescingCache(o => o.KeyPrefix = TestRedis.UniquePrefix("first")).WithRedis(configuration).WithBackplane().WithRedisLoadLock();
        services.AddCoalescingCache("second", o => o.KeyPrefix = TestRedis.UniquePrefix("second")).WithRedis(configuration).WithBackplane().WithRedisLoadLock();
        await using ServiceProvider provider = services.BuildServiceProvider();
        ICoalescingCache first = provider.GetRequiredService<ICoalescingCache>();
        ICoalescingCache second = provider.GetRequiredService<ICoalescingCacheProvider>().GetCache("second");

        foreach (ICoalescingCache cache in new[] { first, second })
        {
            await cache.SetAsync("set", 1);                                                       // L2 write, backplane publish
            Assert.That(await cache.GetOrLoadAsync("cold", static _ => Task.FromResult(2)), Is.EqualTo(2)); // lock, L2 read
            IReadOnlyDictionary<string, int> many = await cache.GetOrLoadManyAsync(["a", "b"], static (keys, _) =>
                Task.FromResult<IReadOnlyDictionary<string, int>>(keys.ToDictionary(k => k, _ => 3)));   // batch reader
            Assert.That(many.Values, Has.All.EqualTo(3));
        }

        await RedisRegistration.GetTier(provider, string.Empty).Health.Attached.WaitAsync(TestRedis.Guard);
        await provider.GetRequiredKeyedService<RedisBackplane>(string.Empty).WhenSubscribed.WaitAsync(TestRedis.Guard);
        await provider.GetRequiredKeyedService<RedisBackplane>("second").WhenSubscribed.WaitAsync(TestRedis.Guard);

        string[] clients = await ClientsNamedAsync(server, name);
        Assert.That(clients, Has.Length.EqualTo(2), "one interactive and one subscriber connection:" + Environment.NewLine + string.Join(Environment.NewLine, clients));
        Assert.That(clients.Count(IsSubscriber), Is.EqualTo(1), "one of them is the subscriber");
        Assert.That(RedisRegistration.GetTier(provider, "second").Connection, Is.SameAs(RedisRegistration.GetTier(provider, string.Empty).Connection));
        Assert.That(provider.GetRequiredService<IConnectionMultiplexer>(), Is.SameAs(RedisRegistration.GetTier(provider, string.Empty).Connection.Current), "registered as the container's IConnectionMultiplexer");
    }

    [Test]
    public async Task AppsAddStackExchangeRedisCache_IsTheL2_AndTheBackplaneAndLockShareItsConnection()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        string name = "cg-app-" + Guid.NewGuid().ToString("N")[..8];
        string instance = TestRedis.UniquePrefix("app");
        var services = new ServiceCollection();
        services.AddStackExchangeRedisCache(o =>
        {
            o.Configuration = server.Configuration + ",name=" + name;
            o.InstanceName = instance;
        });
        services.AddCoalescingCache().WithBackplane().WithRedisLoadLock();
        await using ServiceProvider provider = services.BuildServiceProvider();
        ICoalescingCache cache = provider.GetRequiredService<ICoalescingCache>();
        IDistributedCache appCache = provider.GetRequiredService<IDistributedCache>();

        Assert.That(RedisRegistration.GetTier(provider, string.Empty).Cache, Is.SameAs(appCache), "the app's RedisCache is the L2");
        await cache.SetAsync("k", "v");
        Assert.That(await cache.GetOrLoadAsync("cold", static _ => Task.FromResult("loaded")), Is.EqualTo("loaded"));
        Assert.That(await appCache.GetAsync("k"), Is.Not.Null, "the app's RedisCache reads what the coalescing cache wrote");
        Assert.That((await server.CliAsync("TYPE", instance + "k")).Trim(), Is.EqualTo("hash"), "RedisCache's layout, under the app's InstanceName");
        await provider.GetRequiredKeyedService<RedisBackplane>(string.Empty).WhenSubscribed.WaitAsync(TestRedis.Guard);

        string[] clients = await ClientsNamedAsync(server, name);
        Assert.That(clients, Has.Length.EqualTo(2), string.Join(Environment.NewLine, clients));
        Assert.That(clients.Count(IsSubscriber), Is.EqualTo(1));
    }

    [Test]
    public async Task AppsIConnectionMultiplexer_IsSharedByEverything_AndLeftOpenWhenTheContainerIsDisposed()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        string name = "cg-mux-" + Guid.NewGuid().ToString("N")[..8];
        await using ConnectionMultiplexer appMultiplexer = await TestRedis.ConnectAsync(server, o => o.ClientName = name);
        var services = new ServiceCollection();
        services.AddSingleton<IConnectionMultiplexer>(appMultiplexer);
        services.AddCoalescingCache(o => o.KeyPrefix = TestRedis.UniquePrefix("mux")).WithRedis().WithBackplane();
        await using (ServiceProvider provider = services.BuildServiceProvider())
        {
            ICoalescingCache cache = provider.GetRequiredService<ICoalescingCache>();
            await cache.SetAsync("k", 5);
            Assert.That(await cache.GetOrLoadAsync<int>("k", static _ => throw new AssertionException("L1 hit expected")), Is.EqualTo(5));
            await provider.GetRequiredKeyedService<RedisBackplane>(string.Empty).WhenSubscribed.WaitAsync(TestRedis.Guard);
            Assert.That(RedisRegistration.GetTier(provider, string.Empty).Connection.Current, Is.SameAs(appMultiplexer));
            string[] clients = await ClientsNamedAsync(server, name);
            Assert.That(clients, Has.Length.EqualTo(2), string.Join(Environment.NewLine, clients));
        }

        Assert.That(appMultiplexer.IsConnected, Is.True, "the application's multiplexer is the application's to close");
        Assert.That(await appMultiplexer.GetDatabase().PingAsync(), Is.GreaterThan(TimeSpan.Zero));
    }

    [Test]
    public async Task OwnedMultiplexer_IsClosedWithTheContainer_DisposedSynchronouslyOrNot()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        foreach (bool synchronously in new[] { true, false })
        {
            var services = new ServiceCollection();
            services.AddCoalescingCache().WithRedis(server.Configuration);
            ServiceProvider provider = services.BuildServiceProvider();
            await provider.GetRequiredService<ICoalescingCache>().SetAsync("k", 1);
            IConnectionMultiplexer multiplexer = provider.GetRequiredService<IConnectionMultiplexer>();
            if (synchronously)
            {
                provider.Dispose();
            }
            else
            {
                await provider.DisposeAsync();
            }

            await Eventually.HoldsAsync(() => !multiplexer.IsConnected, $"closed (disposed {(synchronously ? "synchronously" : "asynchronously")})");
        }
    }

    [Test]
    public void WithRedisOptions_WithoutAnyConnection_FailsWhenTheCacheIsCreated_NamingTheOptions()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache().WithRedis(o => o.InstanceName = "x:");
        using ServiceProvider provider = services.BuildServiceProvider();
        var ex = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<ICoalescingCache>());
        Assert.That(ex!.Message, Does.Contain("RedisCacheOptions.Configuration"));
    }

    [Test]
    public void WithRedisOptions_WithABadString_FailsWhenTheCacheIsCreated_NamingTheBadPart()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache().WithRedis(o => o.Configuration = "127.0.0.1:notaport,password=hunter2");
        using ServiceProvider provider = services.BuildServiceProvider();
        var ex = Assert.Throws<ArgumentException>(() => provider.GetRequiredService<ICoalescingCache>());
        Assert.That(ex!.Message, Does.Contain("'127.0.0.1:notaport'").And.Not.Contain("hunter2"));
    }

    private static async Task<string[]> ClientsNamedAsync(RedisServer server, string name) =>
        [.. (await server.CliAsync("CLIENT", "LIST")).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(line => line.Contains(" name=" + name + " ", StringComparison.Ordinal))];

    // A RESP2 subscriber connection reports its channel count (sub=N) and the P flag.
    private static bool IsSubscriber(string clientLine) => !clientLine.Contains(" sub=0 ", StringComparison.Ordinal) || clientLine.Contains(" flags=P", StringComparison.Ordinal);
}
