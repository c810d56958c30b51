using System.Buffers.Binary;
using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (f): a lifetime is either rejected up front, with an <see cref="ArgumentOutOfRangeException"/>
/// naming the option and the limit (<see cref="CoalescingCacheOptionsValidator.MaxLifetime"/>, 3650 days, as for the
/// cache-wide options) before the loader runs, or it works end to end: no call fails after a successful load, and no
/// lifetime turns into an L2 failure. An L2 envelope whose expiry no writer could have produced is corrupt: a logged miss.
/// </summary>
public class Lifetimes_NeverFailACallAfterTheLoad
{
    private static readonly TimeSpan Limit = CoalescingCacheOptionsValidator.MaxLifetime;

    private static CacheEntryOptions With(string option, TimeSpan value) => option switch
    {
        nameof(CacheEntryOptions.Expiration) => new CacheEntryOptions { Expiration = value },
        nameof(CacheEntryOptions.LocalExpiration) => new CacheEntryOptions { LocalExpiration = value },
        nameof(CacheEntryOptions.FailSafeMaxDuration) => new CacheEntryOptions { FailSafe = true, FailSafeMaxDuration = value },
        nameof(CacheEntryOptions.FailSafeThrottleDuration) => new CacheEntryOptions { FailSafe = true, FailSafeThrottleDuration = value },
        _ => throw new ArgumentOutOfRangeException(nameof(option), option, "Not a lifetime option."),
    };

    private static IEnumerable<TestCaseData> LifetimesAboveTheLimit()
    {
        foreach (string option in new[] { "Expiration", "LocalExpiration", "FailSafeMaxDuration", "FailSafeThrottleDuration" })
        {
            yield return new TestCaseData(option, TimeSpan.MaxValue).SetArgDisplayNames(option, "TimeSpan.MaxValue");
            yield return new TestCaseData(option, Limit + TimeSpan.FromSeconds(1)).SetArgDisplayNames(option, "3650 days + 1 s");
        }
    }

    private static void AssertNamesTheOptionAndTheLimit(ArgumentOutOfRangeException? ex, string option)
    {
        Assert.That(ex, Is.Not.Null);
        Assert.That(ex!.Message, Does.Contain(option).And.Contain("3650"), "The message names the option and the limit.");
    }

    [TestCaseSource(nameof(LifetimesAboveTheLimit))]
    public void APerCallLifetimeAboveTheLimit_IsRejectedBeforeTheLoaderRuns(string option, TimeSpan value)
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => o.JitterRatio = 0.5, l2: new FakeDistributedCache(time), time: time);
        int calls = 0;

        var ex = Assert.ThrowsAsync<ArgumentOutOfRangeException>(
            async () => await cache.GetOrLoadAsync("k", _ => Task.FromResult(Interlocked.Increment(ref calls)), With(option, value)),
            $"CacheEntryOptions.{option} = {value} was not rejected.");

        Assert.That(calls, Is.Zero, $"The loader ran before the lifetime was rejected; then the call failed with: {ex?.Message}");
        AssertNamesTheOptionAndTheLimit(ex, option);
        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Closed));
    }

    [TestCaseSource(nameof(LifetimesAboveTheLimit))]
    public void APerCallLifetimeAboveTheLimit_IsRejectedBySetAndByBatches(string option, TimeSpan value)
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(l2: new FakeDistributedCache(time), time: time);
        int calls = 0;

        AssertNamesTheOptionAndTheLimit(
            Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await cache.SetAsync("k", "v", With(option, value)), $"SetAsync accepted {option} = {value}."),
            option);
        AssertNamesTheOptionAndTheLimit(
            Assert.ThrowsAsync<ArgumentOutOfRangeException>(
                async () => await cache.GetOrLoadManyAsync<string>(
                    ["a", "b"],
                    (keys, _) =>
                    {
                        Interlocked.Increment(ref calls);
                        return Task.FromResult<IReadOnlyDictionary<string, string>>(keys.ToDictionary(k => k, k => k));
                    },
                    With(option, value)),
                $"GetOrLoadManyAsync accepted {option} = {value}."),
            option);
        Assert.That(calls, Is.Zero);
        Assert.That(cache.IsInL1("k"), Is.False);
    }

    [TestCase("Expiration")]
    [TestCase("LocalExpiration")]
    public async Task ALoadContextLifetimeAboveTheLimit_IsRejectedWhenSet(string option)
    {
        using var cache = TestCaches.Create();
        Exception? thrown = null;

        await cache.GetOrLoadAsync<int, string>("k", 0, (_, context, _) =>
        {
            try
            {
                if (option == "Expiration")
                {
                    context.Expiration = TimeSpan.MaxValue;
                }
                else
                {
                    context.LocalExpiration = TimeSpan.MaxValue;
                }
            }
            catch (ArgumentOutOfRangeException ex)
            {
                thrown = ex;
                context.DoNotCache();
            }

            return Task.FromResult("v");
        });

        Assert.That(thrown, Is.Not.Null, $"LoadContext.{option} accepted TimeSpan.MaxValue.");
        AssertNamesTheOptionAndTheLimit((ArgumentOutOfRangeException)thrown!, option);
    }

    [Test]
    public async Task TheLongestLifetimesValidationAccepts_WorkEndToEnd()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var logs = new LogCapture();
        Action<CoalescingCacheOptions> options = o =>
        {
            o.DefaultExpiration = Limit;
            o.JitterRatio = 1;
            o.FailSafe = true;
            o.FailSafeMaxDuration = Limit;
            o.FailSafeThrottleDuration = Limit;
        };
        using var cache = TestCaches.Create(options, l2: l2, time: time, logs: logs, random: () => 0.999);
        var longest = new CacheEntryOptions { Expiration = Limit, LocalExpiration = Limit, FailSafeMaxDuration = Limit, FailSafeThrottleDuration = Limit };

        Assert.That(await cache.GetOrLoadAsync("default", _ => Task.FromResult("d")), Is.EqualTo("d"));
        Assert.That(await cache.GetOrLoadAsync("per-call", _ => Task.FromResult("p"), longest), Is.EqualTo("p"));
        await cache.SetAsync("set", "s", longest);

        Assert.That(logs.Entries.Where(e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning).Select(e => e.Message), Is.Empty);
        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Closed));
        using var other = TestCaches.Create(options, l2: l2, time: time);
        Assert.That(await other.GetOrLoadAsync("per-call", _ => Task.FromResult("reloaded")), Is.EqualTo("p"), "The entry reached L2.");
    }

    [Test]
    public async Task TheLongestLoaderTimeoutsValidationAccepts_WorkEndToEnd()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.LoaderHardTimeout = Limit; o.FailSafe = true; o.JitterRatio = 0; o.DefaultExpiration = TimeSpan.FromMinutes(1); }, time: time);

        var loader = new TestCaches.GatedLoader<string>();
        var call = cache.GetOrLoadAsync("k", loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1 || call.IsCompleted, "the load starts");
        loader.Gate.SetResult("v");
        Assert.That(await call.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo("v"), "A LoaderHardTimeout validation accepted failed the call.");

        time.Advance(TimeSpan.FromMinutes(1)); // stale: the soft timeout applies
        var reload = new TestCaches.GatedLoader<string>();
        var call2 = cache.GetOrLoadAsync("k", reload.Load, new CacheEntryOptions { LoaderSoftTimeout = Limit - TimeSpan.FromDays(1) }).AsTask();
        await TestCaches.Until(() => reload.Calls == 1 || call2.IsCompleted, "the reload starts");
        reload.Gate.SetResult("v2");
        Assert.That(await call2.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo("v2"), "A LoaderSoftTimeout validation accepted failed the call.");
    }

    [TestCase("far beyond any lifetime", TestName = "AnL2EnvelopeWithAnAbsurdExpiry_IsACorruptMiss(far beyond any lifetime)")]
    [TestCase("the end of time", TestName = "AnL2EnvelopeWithAnAbsurdExpiry_IsACorruptMiss(the end of time)")]
    [TestCase("before its creation", TestName = "AnL2EnvelopeWithAnAbsurdExpiry_IsACorruptMiss(before its creation)")]
    public async Task AnL2EnvelopeWithAnAbsurdExpiry_IsACorruptMiss(string expiry)
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache();
        Action<CoalescingCacheOptions> options = o => { o.FailSafe = true; o.JitterRatio = 0; };
        using (var writer = TestCaches.Create(options, l2: l2, time: time))
        {
            await writer.SetAsync("k", "v0");
        }

        // Envelope v1: created (UTC ticks) at offset 8, logical expiry at offset 16, both little endian.
        string l2Key = l2.Keys.Single(k => ControlledDistributedCache.IsEntry(k, l2.Raw(k)));
        byte[] envelope = l2.Raw(l2Key)!;
        long created = BinaryPrimitives.ReadInt64LittleEndian(envelope.AsSpan(8));
        long absurd = expiry switch
        {
            "far beyond any lifetime" => time.GetUtcNow().UtcTicks + TimeSpan.FromDays(100 * 365).Ticks,
            "the end of time" => DateTimeOffset.MaxValue.UtcTicks,
            _ => created - 1,
        };
        BinaryPrimitives.WriteInt64LittleEndian(envelope.AsSpan(16), absurd);
        l2.PutRaw(l2Key, envelope);

        var logs = new LogCapture();
        using var reader = TestCaches.Create(options, l2: l2, time: time, logs: logs);
        Assert.ThrowsAsync<SourceDownException>(
            async () => await reader.GetOrLoadAsync<string>("k", _ => throw new SourceDownException()),
            "An envelope whose expiry is " + expiry + " was served (fresh or as a fail-safe stand-in).");
        Assert.That(logs.Count(Log.L2PayloadRejectedId), Is.GreaterThanOrEqualTo(1), "The corrupt envelope was not logged as a rejected payload.");
    }
}
