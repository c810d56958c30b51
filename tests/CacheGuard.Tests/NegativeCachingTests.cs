using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

/// <summary>The penetration guard: "not found" is cached briefly, so lookups of missing data stop reaching the source.</summary>
public class NegativeCachingTests
{
    [Test]
    public async Task NullResult_IsCachedForNegativeExpiration_NotTheFullLifetime()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.JitterRatio = 0; o.NegativeExpiration = TimeSpan.FromSeconds(30); o.DefaultExpiration = TimeSpan.FromMinutes(5); }, time: time);
        int calls = 0;
        Task<string?> Missing(CancellationToken _) { calls++; return Task.FromResult<string?>(null); }

        Assert.That(await cache.GetOrLoadAsync("ghost", Missing), Is.Null);
        time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromTicks(1));
        Assert.That(await cache.GetOrLoadAsync("ghost", Missing), Is.Null);
        Assert.That(calls, Is.EqualTo(1), "Within NegativeExpiration: served from cache.");

        time.Advance(TimeSpan.FromTicks(1));
        await cache.GetOrLoadAsync("ghost", Missing);
        Assert.That(calls, Is.EqualTo(2), "After NegativeExpiration: asked again.");
    }

    [Test]
    public async Task NegativeExpirationZero_TurnsItOff()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(o => o.NegativeExpiration = TimeSpan.Zero, l2: l2);
        int calls = 0;

        for (int i = 0; i < 3; i++)
        {
            await cache.GetOrLoadAsync<string?>("ghost", _ => { calls++; return Task.FromResult<string?>(null); });
        }

        Assert.That(calls, Is.EqualTo(3));
        Assert.That(l2.Sets, Is.Zero, "Absence is not written anywhere.");
    }

    [Test]
    public async Task NotFound_TravelsThroughL2_ToOtherNodes()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using (var first = TestCaches.Create(o => o.JitterRatio = 0, l2: l2, time: time))
        {
            await first.GetOrLoadAsync<string?>("ghost", _ => Task.FromResult<string?>(null));
        }

        Assert.That(l2.LastOptions["ghost"].AbsoluteExpirationRelativeToNow, Is.EqualTo(TimeSpan.FromSeconds(30)));
        using var second = TestCaches.Create(l2: l2, time: time);
        int calls = 0;
        Assert.That(await second.GetOrLoadAsync<string?>("ghost", _ => { calls++; return Task.FromResult<string?>("x"); }), Is.Null);
        Assert.That(calls, Is.Zero);
    }

    [Test]
    public async Task NegativeLifetime_IsJittered()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(o => { o.JitterRatio = 0.1; o.NegativeExpiration = TimeSpan.FromSeconds(30); }, l2: l2, random: () => 0.5);

        await cache.GetOrLoadAsync<string?>("ghost", _ => Task.FromResult<string?>(null));

        Assert.That(l2.LastOptions["ghost"].AbsoluteExpirationRelativeToNow, Is.EqualTo(TimeSpan.FromSeconds(31.5)));
    }
}
