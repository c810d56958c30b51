using System.Reflection;
using System.Runtime.CompilerServices;
using CacheGuard.Ecosystem.Tests.Support;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Ecosystem.Tests;

/// <summary>What only the adapter does: registration, option mapping, and the abstraction's extra overloads.</summary>
public class HybridCacheAdapterTests
{
    [Test]
    public async Task AsHybridCache_ReplacesAnEarlierHybridCacheRegistration_SoOneLineSwitchesAnApp()
    {
        var services = new ServiceCollection();
        services.AddSingleton<HybridCache, ThrowingHybridCache>(); // stands in for AddHybridCache()
        services.AddSingleton<ProductService>();
        services.AddCoalescingCache().AsHybridCache();
        await using ServiceProvider provider = services.BuildServiceProvider();

        var products = provider.GetRequiredService<ProductService>();
        string[] results = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => products.GetNameAsync(1).AsTask()));

        Assert.That(results, Has.All.EqualTo("product-1"));
        Assert.That(products.Loads, Is.EqualTo(1));
        Assert.That(services.Count(d => d.ServiceType == typeof(HybridCache)), Is.EqualTo(1));
    }

    [Test]
    public async Task TheHybridCache_AndTheCoalescingCache_AreOneCache()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache().AsHybridCache();
        await using ServiceProvider provider = services.BuildServiceProvider();

        await provider.GetRequiredService<HybridCache>().SetAsync("k", 5);

        CacheLookup<int> lookup = await provider.GetRequiredService<ICoalescingCache>().TryGetAsync<int>("k");
        Assert.That(lookup.Value, Is.EqualTo(5));
    }

    [Test]
    public async Task OnANamedCache_AsHybridCache_RegistersAKeyedHybridCache_OverThatCache()
    {
        var l2 = new FakeDistributedCache();
        var services = new ServiceCollection();
        services.AddCoalescingCache();
        services.AddCoalescingCache("users").WithDistributedCache(l2).AsHybridCache();
        await using ServiceProvider provider = services.BuildServiceProvider();

        await provider.GetRequiredKeyedService<HybridCache>("users").SetAsync("u1", "Ada");

        Assert.That(provider.GetService<HybridCache>(), Is.Null, "the unnamed cache was not exposed");
        Assert.That(l2.Keys, Is.EquivalentTo(new[] { "__cacheguard:cache:5:users:u1" }));
        Assert.That((await provider.GetRequiredKeyedService<ICoalescingCache>("users").TryGetAsync<string>("u1")).Value, Is.EqualTo("Ada"));
    }

    [Test]
    public async Task ExpirationAndLocalCacheExpiration_MapToTheTwoLevels()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddCoalescingCache(o => o.JitterRatio = 0).WithDistributedCache(l2).AsHybridCache();
        await using ServiceProvider provider = services.BuildServiceProvider();
        var cache = provider.GetRequiredService<HybridCache>();
        var options = new HybridCacheEntryOptions { Expiration = TimeSpan.FromSeconds(10), LocalCacheExpiration = TimeSpan.FromSeconds(2) };
        int loads = 0;
        ValueTask<int> Get() => cache.GetOrCreateAsync("k", _ => ValueTask.FromResult(++loads), options);

        await Get();
        time.Advance(TimeSpan.FromSeconds(1.9));
        await Get();
        Assert.That((loads, l2.Gets), Is.EqualTo((1, 1)), "inside both lifetimes: an L1 hit");

        time.Advance(TimeSpan.FromSeconds(0.2));
        await Get();
        Assert.That((loads, l2.Gets), Is.EqualTo((1, 2)), "past the local lifetime: read from L2");

        time.Advance(TimeSpan.FromSeconds(8));
        await Get();
        Assert.That(loads, Is.EqualTo(2), "past the overall lifetime: loaded again");
    }

    [Test]
    public async Task TheSpanAndInterpolatedKeyOverloads_ReachTheSameEntry()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache().AsHybridCache();
        await using ServiceProvider provider = services.BuildServiceProvider();
        var cache = provider.GetRequiredService<HybridCache>();
        int id = 7;

        await cache.SetAsync("user:7", "Ada");

        Assert.That(await cache.GetOrCreateAsync($"user:{id}", _ => ValueTask.FromResult("loaded")), Is.EqualTo("Ada"));
        Assert.That(await cache.GetOrCreateAsync("user:7".AsSpan(), _ => ValueTask.FromResult("loaded")), Is.EqualTo("Ada"));
    }

    [Test]
    public async Task RemoveAndRemoveByTag_WithSeveralKeysOrTags_RemoveEach()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache().AsHybridCache();
        await using ServiceProvider provider = services.BuildServiceProvider();
        var cache = provider.GetRequiredService<HybridCache>();
        await cache.SetAsync("a", 1);
        await cache.SetAsync("b", 2);
        await cache.SetAsync("c", 3, tags: ["t1"]);
        await cache.SetAsync("d", 4, tags: ["t2"]);

        await cache.RemoveAsync(["a", "b"]);
        await cache.RemoveByTagAsync(["t1", "t2"]);

        var core = provider.GetRequiredService<ICoalescingCache>();
        foreach (string key in new[] { "a", "b", "c", "d" })
        {
            Assert.That((await core.TryGetAsync<int>(key)).Found, Is.False, key);
        }
    }

    [Test]
    public async Task RemoveByTag_OfTheWildcard_InvalidatesEveryEntry()
    {
        var time = new FakeTimeProvider();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddCoalescingCache().AsHybridCache();
        using ServiceProvider provider = services.BuildServiceProvider();
        HybridCache cache = provider.GetRequiredService<HybridCache>();
        await cache.SetAsync("plain", "before");
        await cache.SetAsync("tagged", "before", tags: ["t"]);
        time.Advance(TimeSpan.FromSeconds(1));

        await cache.RemoveByTagAsync("*");
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.That(await cache.GetOrCreateAsync("plain", static _ => ValueTask.FromResult("after")), Is.EqualTo("after"));
        Assert.That(await cache.GetOrCreateAsync("tagged", static _ => ValueTask.FromResult("after")), Is.EqualTo("after"));
    }

    [Test]
    public void HybridCacheEntryOptions_IsImmutable_WhichTheAdapterRelies_OnToConvertEachInstanceOnce()
    {
        foreach (PropertyInfo property in typeof(HybridCacheEntryOptions).GetProperties())
        {
            Type[] modifiers = property.SetMethod?.ReturnParameter.GetRequiredCustomModifiers() ?? [typeof(IsExternalInit)];
            Assert.That(modifiers, Has.Member(typeof(IsExternalInit)), $"{property.Name} became settable: the adapter's per-instance conversion cache is no longer safe");
        }
    }

    [Test]
    public void FlagValues_AreTheSameBitsInBothEnums()
    {
        foreach (CacheEntryFlags flag in Enum.GetValues<CacheEntryFlags>())
        {
            Assert.That(Enum.GetName((HybridCacheEntryFlags)(int)flag), Is.EqualTo(flag.ToString()), "CacheEntryFlags mirrors HybridCacheEntryFlags bit for bit");
        }
    }

    /// <summary>Code written against the abstraction, unchanged by the switch.</summary>
    private sealed class ProductService(HybridCache cache)
    {
        private int _loads;

        public int Loads => Volatile.Read(ref _loads);

        public ValueTask<string> GetNameAsync(int id) =>
            cache.GetOrCreateAsync($"product:{id}", async ct =>
            {
                Interlocked.Increment(ref _loads);
                await Task.Yield();
                return $"product-{id}";
            });
    }

    private sealed class ThrowingHybridCache : HybridCache
    {
        public override ValueTask<T> GetOrCreateAsync<TState, T>(string key, TState state, Func<TState, CancellationToken, ValueTask<T>> factory, HybridCacheEntryOptions? options = null, IEnumerable<string>? tags = null, CancellationToken cancellationToken = default) => throw new AssertionException("the old registration was used");

        public override ValueTask RemoveAsync(string key, CancellationToken cancellationToken = default) => throw new AssertionException("the old registration was used");

        public override ValueTask RemoveByTagAsync(string tag, CancellationToken cancellationToken = default) => throw new AssertionException("the old registration was used");

        public override ValueTask SetAsync<T>(string key, T value, HybridCacheEntryOptions? options = null, IEnumerable<string>? tags = null, CancellationToken cancellationToken = default) => throw new AssertionException("the old registration was used");
    }
}
