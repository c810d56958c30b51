using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class EarlyRefreshTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    [Test]
    public async Task EagerThreshold_TheFirstHitAfterItStartsOneBackgroundRefresh_AndGetsTheCurrentValue()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.DefaultExpiration = TimeSpan.FromSeconds(100); o.JitterRatio = 0; o.EagerRefreshThreshold = 0.9; }, time: time);
        using var metrics = new MetricCapture(cache.Name);
        int loads = 0;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task<int> Load(CancellationToken _)
        {
            int n = Interlocked.Increment(ref loads);
            if (n > 1)
            {
                await gate.Task;
            }

            return n;
        }

        Assert.That(await cache.GetOrLoadAsync("k", Load), Is.EqualTo(1));
        time.Advance(TimeSpan.FromSeconds(90) - TimeSpan.FromTicks(1));
        Assert.That(await cache.GetOrLoadAsync("k", Load), Is.EqualTo(1));
        Assert.That(loads, Is.EqualTo(1), "Before the threshold: no refresh.");

        time.Advance(TimeSpan.FromTicks(1));
        var hits = Enumerable.Range(0, 50).Select(_ => cache.GetOrLoadAsync("k", Load)).ToArray();
        Assert.That(hits.All(h => h.IsCompletedSuccessfully && h.Result == 1), Is.True, "Every hit returns the current value at once.");
        Assert.That(metrics["cacheguard.cache.early_refreshes"], Is.EqualTo(1));
        await TestCaches.Until(() => Volatile.Read(ref loads) >= 2, "the refresh's loader runs, on the thread pool rather than the hitting caller's thread");

        gate.SetResult();
        await TestCaches.Until(() => cache.BackgroundCount == 0, "the refresh finishes");
        Assert.That(loads, Is.EqualTo(2), "Exactly one refresh.");
        Assert.That(await cache.GetOrLoadAsync("k", Load), Is.EqualTo(2));
    }

    [Test]
    public async Task EagerRefresh_ProbesL2ForANewerValueFirst()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        Action<CoalescingCacheOptions> options = o => { o.DefaultExpiration = TimeSpan.FromSeconds(100); o.JitterRatio = 0; o.EagerRefreshThreshold = 0.5; };
        using var nodeA = TestCaches.Create(options, l2: l2, time: time);
        using var nodeB = TestCaches.Create(options, l2: l2, time: time);
        await nodeA.GetOrLoadAsync("k", _ => Task.FromResult("a1"));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(await nodeB.GetOrLoadAsync("k", _ => Task.FromResult("b1")), Is.EqualTo("a1"));

        time.Advance(TimeSpan.FromSeconds(50)); // past A's threshold
        await nodeA.GetOrLoadAsync("k", _ => Task.FromResult("a2"));
        await TestCaches.Until(() => nodeA.BackgroundCount == 0, "A's refresh finishes");

        int bLoads = 0;
        time.Advance(TimeSpan.FromSeconds(1)); // past B's threshold too
        await nodeB.GetOrLoadAsync("k", _ => { bLoads++; return Task.FromResult("b2"); });
        await TestCaches.Until(() => nodeB.BackgroundCount == 0, "B's refresh finishes");

        Assert.That(bLoads, Is.Zero, "B found A's newer value in L2.");
        Assert.That(await nodeB.GetOrLoadAsync("k", _ => Task.FromResult("b3")), Is.EqualTo("a2"));
    }

    [Test]
    public async Task WithTheDistributedLock_TwoNodesRefreshingOneKey_RunOneLoad_AndBothGetItsValue()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var locks = new WaitCountingLock(new InMemoryLoadLock());
        DefaultCoalescingCache Node() => new(
            new CoalescingCacheOptions { Name = "refresh-lock", DefaultExpiration = TimeSpan.FromSeconds(100), JitterRatio = 0, EagerRefreshThreshold = 0.5, DistributedLoadLock = true },
            l2, time, loadLock: locks);
        using DefaultCoalescingCache a = Node();
        using DefaultCoalescingCache b = Node();
        Assert.That(await a.GetOrLoadAsync("k", _ => Task.FromResult("v1")), Is.EqualTo("v1"));
        Assert.That(await b.GetOrLoadAsync("k", _ => Task.FromResult("b's own")), Is.EqualTo("v1"), "B reads A's value from L2");

        int loads = 0;
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<string> Refresh(CancellationToken _)
        {
            Interlocked.Increment(ref loads);
            return gate.Task;
        }

        time.Advance(TimeSpan.FromSeconds(60)); // past both nodes' refresh threshold
        Assert.That(await a.GetOrLoadAsync("k", Refresh), Is.EqualTo("v1"), "the hit is served at once; A's refresh takes the lock");
        await TestCaches.Until(() => Volatile.Read(ref loads) == 1, "A's refresh loads");
        Assert.That(await b.GetOrLoadAsync("k", Refresh), Is.EqualTo("v1"), "the hit is served at once; B's refresh finds the lock held");
        await TestCaches.Until(() => locks.Waits == 1, "B's refresh waits for A's");

        gate.SetResult("v2");
        await TestCaches.Until(() => a.BackgroundCount == 0 && b.BackgroundCount == 0, "both refreshes end");

        Assert.That(loads, Is.EqualTo(1), "one refresh load across the two nodes");
        Assert.That(await b.GetOrLoadAsync("k", _ => Task.FromResult("unexpected")), Is.EqualTo("v2"), "B took A's refreshed value");
        Assert.That(await a.GetOrLoadAsync("k", _ => Task.FromResult("unexpected")), Is.EqualTo("v2"));
    }

    /// <summary>Counts the waits for another node's load.</summary>
    private sealed class WaitCountingLock(IDistributedLoadLock inner) : IDistributedLoadLock
    {
        private int _waits;

        public int Waits => Volatile.Read(ref _waits);

        public ValueTask<IAsyncDisposable?> TryAcquireAsync(string key, CancellationToken cancellationToken) => inner.TryAcquireAsync(key, cancellationToken);

        public ValueTask<bool> WaitForReleaseAsync(string key, TimeSpan timeout, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _waits);
            return inner.WaitForReleaseAsync(key, timeout, cancellationToken);
        }
    }

    [TestCase(true, false, 0)]
    [TestCase(false, true, 0)]
    [TestCase(false, false, 10)]
    public async Task AHotKeyAcrossTenLifetimes_NoCallerEverMissesAfterTheFirstLoad(bool eager, bool probabilistic, int expectedLaterMisses)
    {
        var time = new FakeTimeProvider();
        var random = new Random(2026);
        using var cache = TestCaches.Create(
            o =>
            {
                o.DefaultExpiration = TimeSpan.FromSeconds(60);
                o.JitterRatio = 0;
                o.EagerRefreshThreshold = eager ? 0.8 : null;
                o.ProbabilisticEarlyRefresh = probabilistic;
            },
            time: time,
            random: random.NextDouble);
        using var metrics = new MetricCapture(cache.Name);
        var loader = new TestCaches.GatedLoader<int>();
        loader.Gate.SetResult(1);

        // Each load takes 5 s of fake time (XFetch's delta); a hit every second for ten lifetimes.
        Task<int> Load(CancellationToken ct)
        {
            time.Advance(TimeSpan.FromSeconds(5));
            return loader.Load(ct);
        }

        await cache.GetOrLoadAsync("hot", Load);
        long firstMisses = metrics["cacheguard.cache.misses"];
        for (int second = 0; second < 10 * 60; second++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await cache.GetOrLoadAsync("hot", Load);
            await TestCaches.Until(() => cache.BackgroundCount == 0, "background refreshes finish");
        }

        // A miss is a caller that found no fresh value and waited for a load.
        Assert.That(firstMisses, Is.EqualTo(1));
        Assert.That(metrics["cacheguard.cache.misses"] - firstMisses, Is.EqualTo(expectedLaterMisses));
        Assert.That(loader.Calls, Is.GreaterThanOrEqualTo(10), "The key was reloaded at least once per lifetime.");
    }

    [TestCase(0.0)]
    [TestCase(1.0)]
    [TestCase(3.0)]
    public void XFetch_RefreshesWithTheProbabilityOfTheFormula(double gapInDeltas)
    {
        var random = new Random(42);
        long delta = TimeSpan.FromSeconds(2).Ticks;
        long expires = TimeSpan.FromHours(1).Ticks;
        long now = expires - (long)(gapInDeltas * delta);
        const int trials = 200_000;
        int refreshes = 0;
        for (int i = 0; i < trials; i++)
        {
            refreshes += XFetch.ShouldRefresh(now, expires, delta, beta: 1.0, random.NextDouble()) ? 1 : 0;
        }

        double expected = XFetch.Probability(expires - now, delta, 1.0);
        Assert.That(expected, Is.EqualTo(Math.Exp(-gapInDeltas)).Within(1e-12));
        Assert.That(refreshes / (double)trials, Is.EqualTo(expected).Within(0.005));
    }

    [Test]
    public void XFetch_BetaAboveOneRefreshesEarlier_AndAZeroDeltaNeverEarly()
    {
        long delta = 1000;
        Assert.That(XFetch.Probability(2000, delta, 2.0), Is.GreaterThan(XFetch.Probability(2000, delta, 1.0)));
        Assert.That(XFetch.ShouldRefresh(0, 1000, 0, 1.0, 0.999999), Is.False);
        Assert.That(XFetch.ShouldRefresh(1000, 1000, 0, 1.0, 0.5), Is.True, "At or past expiry: always.");
    }
}
