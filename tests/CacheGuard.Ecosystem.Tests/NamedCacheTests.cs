using CacheGuard.Ecosystem.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CacheGuard.Ecosystem.Tests;

public class NamedCacheTests
{
    [Test]
    public async Task TwoNamedCaches_HaveIndependentL1s_AndSeparateKeyPrefixesInOneL2()
    {
        var l2 = new FakeDistributedCache();
        var services = new ServiceCollection();
        services.AddCoalescingCache("users").WithDistributedCache(l2);
        services.AddCoalescingCache("orders").WithDistributedCache(l2);
        await using ServiceProvider provider = services.BuildServiceProvider();
        var users = provider.GetRequiredKeyedService<ICoalescingCache>("users");
        var orders = provider.GetRequiredKeyedService<ICoalescingCache>("orders");

        await users.SetAsync("42", "Ada");
        await orders.SetAsync("42", 1999m);

        Assert.That(users, Is.Not.SameAs(orders));
        Assert.That(l2.Keys, Is.EquivalentTo(new[] { "__cacheguard:cache:5:users:42", "__cacheguard:cache:6:orders:42" }), "each named cache in a key space no user key can reach");
        Assert.That((await users.TryGetAsync<string>("42")).Value, Is.EqualTo("Ada"));
        Assert.That((await orders.TryGetAsync<decimal>("42")).Value, Is.EqualTo(1999m), "same key, other cache, other type: no CacheTypeMismatchException");
    }

    [Test]
    public async Task RemovingFromOneNamedCache_LeavesTheOtherAlone()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache("a");
        services.AddCoalescingCache("b");
        await using ServiceProvider provider = services.BuildServiceProvider();
        var a = provider.GetRequiredKeyedService<ICoalescingCache>("a");
        var b = provider.GetRequiredKeyedService<ICoalescingCache>("b");
        await a.SetAsync("k", 1);
        await b.SetAsync("k", 2);

        await a.RemoveAsync("k");

        Assert.That((await a.TryGetAsync<int>("k")).Found, Is.False);
        Assert.That((await b.TryGetAsync<int>("k")).Value, Is.EqualTo(2));
    }

    [Test]
    public async Task KeyedServiceInjection_TheProvider_AndGetRequiredKeyedService_GiveOneInstance()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache("users");
        services.AddSingleton<UsersConsumer>();
        await using ServiceProvider provider = services.BuildServiceProvider();

        ICoalescingCache injected = provider.GetRequiredService<UsersConsumer>().Cache;

        Assert.That(provider.GetRequiredService<ICoalescingCacheProvider>().GetCache("users"), Is.SameAs(injected));
        Assert.That(provider.GetRequiredKeyedService<ICoalescingCache>("users"), Is.SameAs(injected));
    }

    [Test]
    public async Task TheUnnamedCache_KeepsWorkingBesideNamedOnes_WithItsOwnDefaults()
    {
        var l2 = new FakeDistributedCache();
        var services = new ServiceCollection();
        services.AddCoalescingCache().WithDistributedCache(l2);
        services.AddCoalescingCache("users");
        await using ServiceProvider provider = services.BuildServiceProvider();
        var cacheProvider = provider.GetRequiredService<ICoalescingCacheProvider>();

        await provider.GetRequiredService<ICoalescingCache>().SetAsync("k", 1);
        await provider.GetRequiredKeyedService<ICoalescingCache>("users").SetAsync("k", 2);

        Assert.That(cacheProvider.GetCache(string.Empty), Is.SameAs(provider.GetRequiredService<ICoalescingCache>()));
        Assert.That(l2.Keys, Is.EquivalentTo(new[] { "k" }), "the unnamed cache keeps an empty prefix; the named one did not get the unnamed cache's L2");
        var options = provider.GetRequiredService<IOptionsMonitor<CoalescingCacheOptions>>();
        Assert.That((options.Get(Options.DefaultName).Name, options.Get("users").Name), Is.EqualTo(("default", "users")));
    }

    [Test]
    public void AnExplicitKeyPrefixOrName_WinsOverTheNamedDefaults_EvenWhenRegisteredAgain()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache("users", o => { o.KeyPrefix = "u/"; o.Name = "users-v2"; });
        services.AddCoalescingCache("users"); // a second call, e.g. from another module, must not reset them
        using ServiceProvider provider = services.BuildServiceProvider();

        CoalescingCacheOptions options = provider.GetRequiredService<IOptionsMonitor<CoalescingCacheOptions>>().Get("users");

        Assert.That((options.KeyPrefix, options.Name), Is.EqualTo(("u/", "users-v2")));
        Assert.That(services.Count(d => d.ServiceType == typeof(ICoalescingCache)), Is.EqualTo(1));
    }

    [Test]
    public async Task NamedCacheMetrics_CarryItsName()
    {
        using var meters = new MeterCapture("users");
        var services = new ServiceCollection();
        services.AddCoalescingCache("users");
        await using ServiceProvider provider = services.BuildServiceProvider();
        string id = Guid.NewGuid().ToString("N");

        await provider.GetRequiredKeyedService<ICoalescingCache>("users").GetOrLoadAsync(id, _ => Task.FromResult(1));

        Assert.That(meters["cacheguard.cache.loads"], Is.GreaterThanOrEqualTo(1), meters.Dump());
    }

    [Test]
    public void GetCache_OfAnUnknownName_Throws_NamingIt_AndTryGetCache_SaysNo()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache("users");
        using ServiceProvider provider = services.BuildServiceProvider();
        var caches = provider.GetRequiredService<ICoalescingCacheProvider>();

        var error = Assert.Throws<InvalidOperationException>(() => caches.GetCache("orders"));
        Assert.That(error!.Message, Does.Contain("'orders'"));
        Assert.That(caches.TryGetCache("orders", out ICoalescingCache? none), Is.False);
        Assert.That(none, Is.Null);
        Assert.That(caches.TryGetCache(string.Empty, out _), Is.False, "no unnamed cache was registered");
    }

    [Test]
    public void ANamedCachesInvalidOptions_FailWhenItIsResolved_AndOnlyIt()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache();
        services.AddCoalescingCache("users", o => o.JitterRatio = 2);
        using ServiceProvider provider = services.BuildServiceProvider();

        Assert.That(provider.GetRequiredService<ICoalescingCache>(), Is.Not.Null);
        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredKeyedService<ICoalescingCache>("users"));
        Assert.That(error!.Message, Does.Contain("JitterRatio"));
    }

    [Test]
    public void AnEmptyName_IsRejected()
    {
        var services = new ServiceCollection();
        Assert.Throws<ArgumentException>(() => services.AddCoalescingCache(" "));
        Assert.Throws<ArgumentException>(() => services.AddCoalescingCache(string.Empty, (Action<CoalescingCacheOptions>?)null));
    }

    private sealed class UsersConsumer([FromKeyedServices("users")] ICoalescingCache cache)
    {
        public ICoalescingCache Cache { get; } = cache;
    }
}
