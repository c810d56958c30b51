using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class LoaderTimeoutTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    private static async Task<(Internal.DefaultCoalescingCache Cache, FakeTimeProvider Time)> CacheWithStaleValueAsync(Action<CoalescingCacheOptions> configure)
    {
        var time = new FakeTimeProvider();
        var cache = TestCaches.Create(o => { o.DefaultExpiration = TimeSpan.FromMinutes(1); o.JitterRatio = 0; o.FailSafe = true; configure(o); }, time: time);
        await cache.GetOrLoadAsync("k", _ => Task.FromResult("v1"));
        time.Advance(TimeSpan.FromMinutes(1));
        return (cache, time);
    }

    [Test]
    public async Task SoftTimeout_CallersGetTheStaleValueNow_TheLoadFinishesInTheBackground()
    {
        var (cache, time) = await CacheWithStaleValueAsync(o => o.LoaderSoftTimeout = TimeSpan.FromSeconds(1));
        using (cache)
        {
            var loader = new TestCaches.GatedLoader<string>();
            var call = cache.GetOrLoadAsync("k", loader.Load).AsTask();
            await TestCaches.Until(() => loader.Calls == 1 && time.ArmedTimers > 0, "the loader runs under its soft timeout");
            time.Advance(TimeSpan.FromSeconds(1));

            Assert.That(await call.WaitAsync(Guard), Is.EqualTo("v1"));
            Assert.That(cache.BackgroundCount, Is.EqualTo(1));

            loader.Gate.SetResult("v2");
            await TestCaches.Until(() => cache.BackgroundCount == 0, "the background load finishes");
            Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("v3")), Is.EqualTo("v2"), "The background load filled the cache.");
            Assert.That(loader.Calls, Is.EqualTo(1));
        }
    }

    [Test]
    public async Task SoftTimeout_WithoutAStaleValue_CallersWait()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => o.LoaderSoftTimeout = TimeSpan.FromSeconds(1), time: time);
        var loader = new TestCaches.GatedLoader<string>();

        var call = cache.GetOrLoadAsync("k", loader.Load).AsTask();
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.That(call.IsCompleted, Is.False);
        loader.Gate.SetResult("v");

        Assert.That(await call.WaitAsync(Guard), Is.EqualTo("v"));
    }

    [Test]
    public async Task HardTimeout_WithoutAStaleValue_CallersGetAClearTimeout_AndTheLoadStillFillsTheCache()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.LoaderHardTimeout = TimeSpan.FromSeconds(3); o.IncludeKeysInTelemetry = true; }, time: time);
        using var metrics = new MetricCapture(cache.Name);
        var loader = new TestCaches.GatedLoader<string>();

        var call = cache.GetOrLoadAsync("k", loader.Load).AsTask();
        await TestCaches.Until(() => time.ArmedTimers > 0, "the hard timeout is armed");
        time.Advance(TimeSpan.FromSeconds(3));

        var ex = await Expect.ThrowsAsync<TimeoutException>(call); // awaits the call itself, so its exception is observed
        Assert.That(ex!.Message, Does.Contain("'k'").And.Contain("LoaderHardTimeout"));
        Assert.That(metrics["cacheguard.cache.loader.timeouts"], Is.EqualTo(1));
        Assert.That(loader.LastToken.IsCancellationRequested, Is.False);

        loader.Gate.SetResult("late");
        await TestCaches.Until(() => cache.BackgroundCount == 0, "the background completion finishes");
        Assert.That((await cache.TryGetAsync<string>("k")).Value, Is.EqualTo("late"));
    }

    [Test]
    public async Task HardTimeout_WithoutBackgroundCompletion_CancelsTheLoader()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.LoaderHardTimeout = TimeSpan.FromSeconds(3); o.AllowTimedOutLoaderBackgroundCompletion = false; }, time: time);
        var loader = new TestCaches.GatedLoader<string>();

        var call = cache.GetOrLoadAsync("k", loader.Load).AsTask();
        await TestCaches.Until(() => time.ArmedTimers > 0, "the hard timeout is armed");
        time.Advance(TimeSpan.FromSeconds(3));

        Assert.ThrowsAsync<TimeoutException>(async () => await call.WaitAsync(Guard));
        Assert.That(loader.LastToken.IsCancellationRequested, Is.True);
        Assert.That(cache.BackgroundCount, Is.Zero);
    }

    [Test]
    public async Task HardTimeout_WithFailSafeAndAStaleValue_ServesStale()
    {
        var (cache, time) = await CacheWithStaleValueAsync(o => o.LoaderHardTimeout = TimeSpan.FromSeconds(3));
        using (cache)
        {
            var loader = new TestCaches.GatedLoader<string>();
            var call = cache.GetOrLoadAsync("k", loader.Load).AsTask();
            await TestCaches.Until(() => loader.Calls == 1 && time.ArmedTimers > 0, "the hard timeout is armed");
            time.Advance(TimeSpan.FromSeconds(3));

            Assert.That(await call.WaitAsync(Guard), Is.EqualTo("v1"));
            loader.Gate.SetResult("v2");
            await TestCaches.Until(() => cache.BackgroundCount == 0, "the background completion finishes");
        }
    }

    [Test]
    public async Task ABackgroundLoadThatFails_IsLogged_NotUnobserved()
    {
        var logs = new LogCapture();
        var (cache, time) = await CacheWithStaleValueAsync(o => o.LoaderSoftTimeout = TimeSpan.FromSeconds(1));
        using (cache)
        {
            var loader = new TestCaches.GatedLoader<string>();
            var call = cache.GetOrLoadAsync("k", loader.Load).AsTask();
            await TestCaches.Until(() => loader.Calls == 1 && time.ArmedTimers > 0, "the soft timeout is armed");
            time.Advance(TimeSpan.FromSeconds(1));
            await call.WaitAsync(Guard);

            loader.Gate.SetException(new InvalidOperationException("late failure"));
            await TestCaches.Until(() => cache.BackgroundCount == 0, "the background load ends");
            Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("v3")), Is.EqualTo("v1"), "The stale value is still re-armed.");
        }
    }
}
