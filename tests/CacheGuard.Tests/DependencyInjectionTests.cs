using System.Buffers;
using System.Text;
using CacheGuard.Internal;
using CacheGuard.Tests.Support;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Tests;

public class DependencyInjectionTests
{
    [Test]
    public void AddCoalescingCache_RegistersASingleton_L1OnlyByDefault()
    {
        var services = new ServiceCollection();
        ICoalescingCacheBuilder builder = services.AddCoalescingCache();
        using var provider = services.BuildServiceProvider();

        var cache = provider.GetRequiredService<ICoalescingCache>();
        Assert.That(provider.GetRequiredService<ICoalescingCache>(), Is.SameAs(cache));
        Assert.That(((DefaultCoalescingCache)cache).HasDistributedCache, Is.False);
        Assert.That(builder.Services, Is.SameAs(services));
    }

    [Test]
    public async Task ARegisteredDistributedCache_BecomesL2()
    {
        var l2 = new FakeDistributedCache();
        var services = new ServiceCollection();
        services.AddSingleton<IDistributedCache>(l2);
        services.AddCoalescingCache();
        using var provider = services.BuildServiceProvider();

        await provider.GetRequiredService<ICoalescingCache>().GetOrLoadAsync("k", _ => Task.FromResult(1));

        Assert.That(l2.Gets, Is.EqualTo(1));
        Assert.That(l2.Sets, Is.EqualTo(1));
    }

    [Test]
    public void AnInMemoryDistributedCache_IsIgnored()
    {
        var services = new ServiceCollection();
        services.AddDistributedMemoryCache();
        services.AddCoalescingCache();
        using var provider = services.BuildServiceProvider();

        Assert.That(((DefaultCoalescingCache)provider.GetRequiredService<ICoalescingCache>()).HasDistributedCache, Is.False);
    }

    [Test]
    public async Task WithDistributedCache_Wins_WithoutDistributedCache_TurnsL2Off()
    {
        var registered = new FakeDistributedCache();
        var chosen = new FakeDistributedCache();
        var services = new ServiceCollection();
        services.AddSingleton<IDistributedCache>(registered);
        services.AddCoalescingCache().WithDistributedCache(chosen);
        using (var provider = services.BuildServiceProvider())
        {
            await provider.GetRequiredService<ICoalescingCache>().GetOrLoadAsync("k", _ => Task.FromResult(1));
        }

        Assert.That(chosen.Sets, Is.EqualTo(1));
        Assert.That(registered.Sets, Is.Zero);

        services.AddCoalescingCache().WithoutDistributedCache();
        using var offProvider = services.BuildServiceProvider();
        Assert.That(((DefaultCoalescingCache)offProvider.GetRequiredService<ICoalescingCache>()).HasDistributedCache, Is.False);
    }

    [Test]
    public async Task TimeProviderFromTheContainer_DrivesExpiry()
    {
        var time = new FakeTimeProvider();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddCoalescingCache(o => { o.DefaultExpiration = TimeSpan.FromSeconds(10); o.JitterRatio = 0; });
        using var provider = services.BuildServiceProvider();
        var cache = provider.GetRequiredService<ICoalescingCache>();
        int calls = 0;

        await cache.GetOrLoadAsync("k", _ => Task.FromResult(++calls));
        time.Advance(TimeSpan.FromSeconds(10));
        await cache.GetOrLoadAsync("k", _ => Task.FromResult(++calls));

        Assert.That(calls, Is.EqualTo(2));
    }

    [Test]
    public async Task WithSerializer_IsUsedForL2()
    {
        var l2 = new FakeDistributedCache();
        var services = new ServiceCollection();
        services.AddCoalescingCache().WithDistributedCache(l2).WithSerializer(new ShoutingSerializer());
        using var provider = services.BuildServiceProvider();

        await provider.GetRequiredService<ICoalescingCache>().SetAsync("k", "quiet");

        string stored = Encoding.UTF8.GetString(l2.Raw("k")!);
        Assert.That(stored, Does.EndWith("QUIET"));
    }

    [Test]
    public async Task WithSerializerFactory_IsConsulted()
    {
        var l2 = new FakeDistributedCache();
        var services = new ServiceCollection();
        services.AddCoalescingCache().WithDistributedCache(l2).WithSerializerFactory(new ShoutingFactory());
        using var provider = services.BuildServiceProvider();

        await provider.GetRequiredService<ICoalescingCache>().SetAsync("k", "quiet");

        Assert.That(Encoding.UTF8.GetString(l2.Raw("k")!), Does.EndWith("QUIET"));
    }

    [Test]
    public void TheCacheIsDisposedWithTheContainer()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache();
        var provider = services.BuildServiceProvider();
        var cache = provider.GetRequiredService<ICoalescingCache>();

        provider.Dispose();

        Assert.Throws<ObjectDisposedException>(() => _ = cache.GetOrLoadAsync("k", _ => Task.FromResult(1)));
    }

    private sealed class ShoutingSerializer : IHybridCacheSerializer<string>
    {
        public string Deserialize(ReadOnlySequence<byte> source) => Encoding.UTF8.GetString(source).ToLowerInvariant();

        public void Serialize(string value, IBufferWriter<byte> target) => target.Write(Encoding.UTF8.GetBytes(value.ToUpperInvariant()));
    }

    private sealed class ShoutingFactory : IHybridCacheSerializerFactory
    {
        public bool TryCreateSerializer<T>([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IHybridCacheSerializer<T>? serializer)
        {
            serializer = typeof(T) == typeof(string) ? (IHybridCacheSerializer<T>)(object)new ShoutingSerializer() : null;
            return serializer is not null;
        }
    }
}
