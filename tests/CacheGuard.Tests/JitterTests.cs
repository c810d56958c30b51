using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class JitterTests
{
    [TestCase(0.0, 0.0, 60.0)]
    [TestCase(0.1, 0.0, 60.0)]
    [TestCase(0.1, 0.5, 63.0)]
    [TestCase(0.2, 0.25, 63.0)]
    [TestCase(0.0, 0.9, 60.0)]
    public void Apply_StretchesByRatioTimesSample(double ratio, double sample, double expectedSeconds)
    {
        Assert.That(Jitter.Apply(TimeSpan.FromSeconds(60), ratio, sample), Is.EqualTo(TimeSpan.FromSeconds(expectedSeconds)));
    }

    [Test]
    public void Apply_NeverShorter_AndBelowTheUpperBound()
    {
        TimeSpan ttl = TimeSpan.FromSeconds(60);
        TimeSpan upper = TimeSpan.FromSeconds(66);
        foreach (double sample in new[] { 0.0, 1e-9, 0.3, 0.999999 })
        {
            TimeSpan jittered = Jitter.Apply(ttl, 0.1, sample);
            Assert.That(jittered, Is.GreaterThanOrEqualTo(ttl).And.LessThan(upper));
        }
    }

    [Test]
    public async Task TenThousandKeysWrittenTogether_ExpireSpreadOverTheWindow()
    {
        var time = new FakeTimeProvider();
        var random = new Random(12345);
        using var cache = TestCaches.Create(o => { o.DefaultExpiration = TimeSpan.FromSeconds(60); o.JitterRatio = 0.1; }, time: time, random: random.NextDouble);
        const int keys = 10_000;
        for (int i = 0; i < keys; i++)
        {
            await cache.SetAsync($"k{i}", i);
        }

        time.Advance(TimeSpan.FromSeconds(60) - TimeSpan.FromTicks(1));
        Assert.That(CountInL1(cache, keys), Is.EqualTo(keys), "None expires before its base lifetime.");

        var perSecond = new List<int>();
        int remaining = keys;
        for (int second = 61; second <= 66; second++)
        {
            time.Advance(TimeSpan.FromSeconds(second) - (time.GetUtcNow() - FakeTimeProvider.Epoch));
            int now = CountInL1(cache, keys);
            perSecond.Add(remaining - now);
            remaining = now;
        }

        Assert.That(remaining, Is.Zero, "All expire before base × (1 + ratio).");
        Assert.That(perSecond.Max(), Is.LessThan(keys * 0.22), $"Spread: {string.Join(", ", perSecond)}; uniform would put ~1/6 in each second.");
        Assert.That(perSecond.Min(), Is.GreaterThan(keys * 0.11));
    }

    [Test]
    public async Task JitterOff_AllExpireTogether()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.DefaultExpiration = TimeSpan.FromSeconds(60); o.JitterRatio = 0; }, time: time);
        for (int i = 0; i < 100; i++)
        {
            await cache.SetAsync($"k{i}", i);
        }

        time.Advance(TimeSpan.FromSeconds(60) - TimeSpan.FromTicks(1));
        Assert.That(CountInL1(cache, 100), Is.EqualTo(100));
        time.Advance(TimeSpan.FromTicks(1));
        Assert.That(CountInL1(cache, 100), Is.Zero);
    }

    [Test]
    public async Task L2Lifetimes_AreJitteredToo_AndL1NeverOutlivesL2()
    {
        var l2 = new FakeDistributedCache();
        var random = new Random(7);
        using var cache = TestCaches.Create(o => { o.DefaultExpiration = TimeSpan.FromSeconds(100); o.JitterRatio = 0.5; }, l2: l2, random: random.NextDouble);

        for (int i = 0; i < 200; i++)
        {
            await cache.SetAsync($"k{i}", i);
        }

        var lifetimes = l2.LastOptions.Values.Select(o => o.AbsoluteExpirationRelativeToNow!.Value.TotalSeconds).ToArray();
        Assert.That(lifetimes, Has.All.InRange(100.0, 150.0));
        Assert.That(lifetimes.Distinct().Count(), Is.GreaterThan(150), "Lifetimes are spread, not one value.");
    }

    [Test]
    public async Task PerEntryJitterRatio_OverridesTheDefault()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(o => o.JitterRatio = 0.5, l2: l2, random: () => 0.99);

        await cache.SetAsync("k", 1, new CacheEntryOptions { Expiration = TimeSpan.FromSeconds(10), JitterRatio = 0 });

        Assert.That(l2.LastOptions["k"].AbsoluteExpirationRelativeToNow, Is.EqualTo(TimeSpan.FromSeconds(10)));
    }

    private static int CountInL1(DefaultCoalescingCache cache, int keys)
    {
        int count = 0;
        for (int i = 0; i < keys; i++)
        {
            count += cache.IsInL1($"k{i}") ? 1 : 0;
        }

        return count;
    }
}
