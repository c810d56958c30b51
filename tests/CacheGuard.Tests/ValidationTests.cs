using CacheGuard.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CacheGuard.Tests;

public class ValidationTests
{
    private static Task<int> One(CancellationToken _) => Task.FromResult(1);

    [Test]
    public void NullKey_ThrowsArgumentNullException_Everywhere()
    {
        using var cache = TestCaches.Create();

        Assert.That(Assert.Throws<ArgumentNullException>(() => _ = cache.GetOrLoadAsync(null!, One))!.ParamName, Is.EqualTo("key"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => _ = cache.GetOrLoadAsync(null!, 1, static (s, _) => Task.FromResult(s)))!.ParamName, Is.EqualTo("key"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => _ = cache.SetAsync(null!, 1))!.ParamName, Is.EqualTo("key"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => _ = cache.RemoveAsync(null!))!.ParamName, Is.EqualTo("key"));
    }

    [TestCase("")]
    [TestCase(" ")]
    [TestCase("\t\n")]
    public void EmptyOrWhitespaceKey_ThrowsArgumentException(string key)
    {
        using var cache = TestCaches.Create();

        var ex = Assert.Throws<ArgumentException>(() => _ = cache.GetOrLoadAsync(key, One));
        Assert.That(ex!.ParamName, Is.EqualTo("key"));
        Assert.That(ex.Message, Does.Contain("empty or whitespace"));
        Assert.Throws<ArgumentException>(() => _ = cache.SetAsync(key, 1));
        Assert.Throws<ArgumentException>(() => _ = cache.RemoveAsync(key));
    }

    [Test]
    public void TooLongKey_ThrowsArgumentException_NamingTheLimit()
    {
        using var cache = TestCaches.Create(o => o.MaxKeyLength = 16);

        Assert.That(cache.GetOrLoadAsync(new string('k', 16), One).IsCompletedSuccessfully, Is.True, "Exactly at the limit is fine.");
        var ex = Assert.Throws<ArgumentException>(() => _ = cache.GetOrLoadAsync(new string('k', 17), One));
        Assert.That(ex!.Message, Does.Contain("MaxKeyLength").And.Contain("16").And.Contain("17 characters"));
        Assert.Throws<ArgumentException>(() => _ = cache.SetAsync(new string('k', 17), 1));
    }

    [Test]
    public async Task NullLoader_ThrowsArgumentNullException_EvenOnAHit()
    {
        using var cache = TestCaches.Create();
        await cache.SetAsync("k", 1);

        Assert.That(Assert.Throws<ArgumentNullException>(() => _ = cache.GetOrLoadAsync("k", (Func<CancellationToken, Task<int>>)null!))!.ParamName, Is.EqualTo("loader"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => _ = cache.GetOrLoadAsync("k", 1, (Func<int, CancellationToken, Task<int>>)null!))!.ParamName, Is.EqualTo("loader"));
        Assert.That(Assert.Throws<ArgumentNullException>(() => _ = cache.GetOrLoadAsync("cold", 1, (Func<int, CancellationToken, Task<int>>)null!))!.ParamName, Is.EqualTo("loader"));
    }

    [TestCase(nameof(CacheEntryOptions.Expiration), -1.0)]
    [TestCase(nameof(CacheEntryOptions.Expiration), 0.0)]
    [TestCase(nameof(CacheEntryOptions.LocalExpiration), -5.0)]
    [TestCase(nameof(CacheEntryOptions.JitterRatio), 1.5)]
    [TestCase(nameof(CacheEntryOptions.JitterRatio), -0.1)]
    public void InvalidEntryOptions_ThrowNamingTheOption(string option, double value)
    {
        using var cache = TestCaches.Create();
        var entry = new CacheEntryOptions();
        switch (option)
        {
            case nameof(CacheEntryOptions.Expiration): entry.Expiration = TimeSpan.FromSeconds(value); break;
            case nameof(CacheEntryOptions.LocalExpiration): entry.LocalExpiration = TimeSpan.FromSeconds(value); break;
            default: entry.JitterRatio = value; break;
        }

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => _ = cache.GetOrLoadAsync("k", One, entry));
        Assert.That(ex!.ParamName, Is.EqualTo(option));
        Assert.That(ex.Message, Does.Contain("CacheEntryOptions." + option));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = cache.SetAsync("k", 1, entry));
    }

    private static IEnumerable<TestCaseData> InvalidOptions()
    {
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.DefaultExpiration = TimeSpan.Zero), "DefaultExpiration");
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.DefaultExpiration = TimeSpan.FromDays(4000)), "DefaultExpiration");
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.DefaultLocalExpiration = TimeSpan.FromSeconds(-1)), "DefaultLocalExpiration");
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.JitterRatio = 1.01), "JitterRatio");
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.JitterRatio = double.NaN), "JitterRatio");
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.NegativeExpiration = TimeSpan.FromSeconds(-1)), "NegativeExpiration");
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.KeyPrefix = null!), "KeyPrefix");
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.MaxKeyLength = 0), "MaxKeyLength");
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.DistributedCacheTimeout = TimeSpan.Zero), "DistributedCacheTimeout");
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.SizeLimit = 0), "SizeLimit");
        yield return new TestCaseData((Action<CoalescingCacheOptions>)(o => o.Name = " "), "Name");
    }

    [TestCaseSource(nameof(InvalidOptions))]
    public void InvalidCacheOptions_FailWhenTheCacheIsResolved_NamingTheOption(Action<CoalescingCacheOptions> configure, string option)
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache(configure);
        using var provider = services.BuildServiceProvider();

        var ex = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<ICoalescingCache>());
        Assert.That(ex!.Message, Does.Contain("CoalescingCacheOptions." + option));
    }

    [Test]
    public void ValidOptions_AtTheirLimits_AreAccepted()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache(o =>
        {
            o.JitterRatio = 1;
            o.NegativeExpiration = TimeSpan.Zero;
            o.MaxKeyLength = 1;
            o.SizeLimit = 1;
            o.DefaultExpiration = TimeSpan.FromDays(3650);
        });
        using var provider = services.BuildServiceProvider();

        Assert.That(provider.GetRequiredService<ICoalescingCache>(), Is.Not.Null);
    }
}
