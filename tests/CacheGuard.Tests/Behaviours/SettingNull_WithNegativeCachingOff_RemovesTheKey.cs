using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (d): <c>SetAsync(key, null)</c> says "the key has no value". With negative caching off
/// (<see cref="CoalescingCacheOptions.NegativeExpiration"/> = 0) absence is not remembered, so the key is removed from
/// L1 and L2: no node keeps serving the value that was there before.
/// </summary>
public class SettingNull_WithNegativeCachingOff_RemovesTheKey
{
    private static void NoNegativeCaching(CoalescingCacheOptions o) => o.NegativeExpiration = TimeSpan.Zero;

    [Test]
    public async Task SetAsyncNull_RemovesTheKeyFromL1AndL2()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using var cache = TestCaches.Create(NoNegativeCaching, l2: l2, time: time);
        await cache.SetAsync<string?>("k", "v");

        await cache.SetAsync<string?>("k", null);

        Assert.That(cache.IsInL1("k"), Is.False, "L1 still holds the value that SetAsync(key, null) replaced.");
        using var other = TestCaches.Create(NoNegativeCaching, l2: l2, time: time);
        Assert.That((await other.TryGetAsync<string?>("k")).Status, Is.EqualTo(CacheLookupStatus.Miss), "L2 still holds the value that SetAsync(key, null) replaced.");
        Assert.That(await cache.GetOrLoadAsync<string?>("k", _ => Task.FromResult<string?>("loaded")), Is.EqualTo("loaded"));
    }

    [Test]
    public async Task SetAsyncNull_RemovesTheKey_WithoutAnL2()
    {
        using var cache = TestCaches.Create(NoNegativeCaching);
        await cache.SetAsync<string?>("k", "v");

        await cache.SetAsync<string?>("k", null);

        Assert.That(await cache.GetOrLoadAsync<string?>("k", _ => Task.FromResult<string?>("loaded")), Is.EqualTo("loaded"), "SetAsync(key, null) left the old value in L1.");
    }
}
