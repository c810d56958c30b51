using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class FailSafeTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    private static void FailSafeOn(CoalescingCacheOptions o)
    {
        o.DefaultExpiration = TimeSpan.FromMinutes(1);
        o.JitterRatio = 0;
        o.FailSafe = true;
        o.FailSafeMaxDuration = TimeSpan.FromHours(1);
        o.FailSafeThrottleDuration = TimeSpan.FromSeconds(30);
    }

    [Test]
    public async Task LoaderThrows_AStaleValueExists_CallersGetTheStaleValue_LoggedAndCounted()
    {
        var time = new FakeTimeProvider();
        var logs = new LogCapture();
        using var cache = TestCaches.Create(FailSafeOn, time: time, logs: logs);
        using var metrics = new MetricCapture(cache.Name);
        await cache.GetOrLoadAsync("k", _ => Task.FromResult("v1"));
        time.Advance(TimeSpan.FromMinutes(1));

        string value = await cache.GetOrLoadAsync<string>("k", _ => throw new InvalidOperationException("db down"));

        Assert.That(value, Is.EqualTo("v1"));
        Assert.That(logs.Count(Log.StaleValueServedId), Is.EqualTo(1));
        Assert.That(metrics["cacheguard.cache.stale_served|cache.stale_reason=error"], Is.EqualTo(1));
    }

    [Test]
    public async Task TheStaleValueIsReArmed_ForTheThrottleDuration_SoTheSourceIsNotHammered()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(FailSafeOn, time: time);
        await cache.GetOrLoadAsync("k", _ => Task.FromResult("v1"));
        time.Advance(TimeSpan.FromMinutes(1));
        int attempts = 0;
        Task<string> Failing(CancellationToken _) { attempts++; throw new InvalidOperationException("db down"); }

        await cache.GetOrLoadAsync("k", Failing);
        time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromTicks(1));
        Assert.That(await cache.GetOrLoadAsync("k", Failing), Is.EqualTo("v1"));
        Assert.That(attempts, Is.EqualTo(1), "Within the throttle: no new attempt.");

        time.Advance(TimeSpan.FromTicks(1));
        Assert.That(await cache.GetOrLoadAsync("k", Failing), Is.EqualTo("v1"));
        Assert.That(attempts, Is.EqualTo(2), "After the throttle: one new attempt, then stale again.");
    }

    [Test]
    public async Task WithoutAStaleValue_TheErrorReachesEveryCaller()
    {
        using var cache = TestCaches.Create(FailSafeOn);

        Assert.ThrowsAsync<InvalidOperationException>(async () => await cache.GetOrLoadAsync<string>("k", _ => throw new InvalidOperationException("db down")));
    }

    [Test]
    public async Task FailSafeOff_TheErrorReachesTheCaller_EvenThoughAnOldValueExisted()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.DefaultExpiration = TimeSpan.FromMinutes(1); o.JitterRatio = 0; }, time: time);
        await cache.GetOrLoadAsync("k", _ => Task.FromResult("v1"));
        time.Advance(TimeSpan.FromMinutes(1));

        Assert.ThrowsAsync<InvalidOperationException>(async () => await cache.GetOrLoadAsync<string>("k", _ => throw new InvalidOperationException("db down")));
    }

    [Test]
    public async Task AfterFailSafeMaxDuration_TheStaleValueIsGone()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(FailSafeOn, time: time);
        await cache.GetOrLoadAsync("k", _ => Task.FromResult("v1"));
        time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromHours(1));

        Assert.ThrowsAsync<InvalidOperationException>(async () => await cache.GetOrLoadAsync<string>("k", _ => throw new InvalidOperationException("db down")));
    }

    [Test]
    public async Task TheStaleValueComesFromL2_WhenThisNodesL1DoesNotHaveIt()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using (var writer = TestCaches.Create(FailSafeOn, l2: l2, time: time))
        {
            await writer.GetOrLoadAsync("k", _ => Task.FromResult("v1"));
        }

        Assert.That(l2.LastOptions["k"].AbsoluteExpirationRelativeToNow, Is.EqualTo(TimeSpan.FromMinutes(61)), "L2 keeps it for FailSafeMaxDuration past its expiry.");
        time.Advance(TimeSpan.FromMinutes(2));
        using var reader = TestCaches.Create(FailSafeOn, l2: l2, time: time);

        Assert.That(await reader.GetOrLoadAsync<string>("k", _ => throw new TimeoutException("db slow")), Is.EqualTo("v1"));
        Assert.That(await reader.GetOrLoadAsync("k", _ => Task.FromResult("v2")), Is.EqualTo("v1"), "Re-armed in L1.");
    }

    [Test]
    public async Task AnExpiredL2EntryIsNotAHit_ButTheLoaderReplacesIt()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using var cache = TestCaches.Create(FailSafeOn, l2: l2, time: time);
        await cache.GetOrLoadAsync("k", _ => Task.FromResult("v1"));
        time.Advance(TimeSpan.FromMinutes(2));

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("v2")), Is.EqualTo("v2"));
        Assert.That((await cache.TryGetAsync<string>("k")).Value, Is.EqualTo("v2"));
    }

    [Test]
    public async Task PerEntryFailSafe_OverridesTheDefault()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.JitterRatio = 0; o.DefaultExpiration = TimeSpan.FromMinutes(1); }, time: time);
        var options = new CacheEntryOptions { FailSafe = true };
        await cache.GetOrLoadAsync("k", _ => Task.FromResult("v1"), options);
        time.Advance(TimeSpan.FromMinutes(5));

        Assert.That(await cache.GetOrLoadAsync<string>("k", _ => throw new InvalidOperationException(), options), Is.EqualTo("v1"));
    }
}
