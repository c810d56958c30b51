using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (m): keys can be personal data, so an exception message the cache throws (and that ends up in
/// the application's logs) carries the key only with <see cref="CoalescingCacheOptions.IncludeKeysInTelemetry"/> on,
/// the same rule as its log lines. Each case runs with the option off (no key) and on (the key, as a control).
/// </summary>
public class ExceptionMessages_CarryKeysOnlyWhenAskedTo
{
    private const string PersonalKey = "alice@example.com";
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    private static void AssertKeyShownOnlyWhenAsked(Exception? ex, bool includeKeys)
    {
        Assert.That(ex, Is.Not.Null);
        if (includeKeys)
        {
            Assert.That(ex!.Message, Does.Contain(PersonalKey), "With IncludeKeysInTelemetry on, the message names the key.");
        }
        else
        {
            Assert.That(ex!.Message, Does.Not.Contain(PersonalKey), "With IncludeKeysInTelemetry off, the message must not carry the key.");
        }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ATooLongKey(bool includeKeys)
    {
        using var cache = TestCaches.Create(o => { o.IncludeKeysInTelemetry = includeKeys; o.MaxKeyLength = 10; });

        var ex = Assert.Throws<ArgumentException>(() => _ = cache.GetOrLoadAsync(PersonalKey, _ => Task.FromResult(1)));

        AssertKeyShownOnlyWhenAsked(ex, includeKeys);
        Assert.That(ex!.Message, Does.Contain("MaxKeyLength"), "The message still names the limit.");
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task ATypeMismatch_InL1(bool includeKeys)
    {
        using var cache = TestCaches.Create(o => o.IncludeKeysInTelemetry = includeKeys);
        await cache.SetAsync(PersonalKey, "a string");

        AssertKeyShownOnlyWhenAsked(Assert.Throws<CacheTypeMismatchException>(() => _ = cache.GetOrLoadAsync(PersonalKey, _ => Task.FromResult(1))), includeKeys);
        AssertKeyShownOnlyWhenAsked(Assert.Throws<CacheTypeMismatchException>(() => _ = cache.TryGetAsync<int>(PersonalKey)), includeKeys);
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task ATypeMismatch_WhileLoading(bool includeKeys)
    {
        using var cache = TestCaches.Create(o => o.IncludeKeysInTelemetry = includeKeys);
        var loader = new TestCaches.GatedLoader<string>();
        var loading = cache.GetOrLoadAsync(PersonalKey, loader.Load).AsTask();

        AssertKeyShownOnlyWhenAsked(Assert.Throws<CacheTypeMismatchException>(() => _ = cache.GetOrLoadAsync(PersonalKey, _ => Task.FromResult(1))), includeKeys);

        loader.Gate.SetResult("done");
        await loading.WaitAsync(Guard);
    }

    [TestCase(false)]
    [TestCase(true)]
    public async Task AHardTimeout(bool includeKeys)
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.IncludeKeysInTelemetry = includeKeys; o.LoaderHardTimeout = TimeSpan.FromSeconds(3); }, time: time);
        var loader = new TestCaches.GatedLoader<string>();
        int armed = time.ArmedTimers;
        var call = cache.GetOrLoadAsync(PersonalKey, loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1 && time.ArmedTimers > armed, "the hard timeout is armed");
        time.Advance(TimeSpan.FromSeconds(3));

        var ex = await Expect.ThrowsAsync<TimeoutException>(call);

        AssertKeyShownOnlyWhenAsked(ex, includeKeys);
        Assert.That(ex!.Message, Does.Contain("LoaderHardTimeout"), "The message still names the option.");
        loader.Gate.SetResult("late");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void ALoaderReturningANullTask(bool includeKeys)
    {
        using var cache = TestCaches.Create(o => o.IncludeKeysInTelemetry = includeKeys);

        var ex = Assert.ThrowsAsync<InvalidOperationException>(async () => await cache.GetOrLoadAsync<string>(PersonalKey, _ => null!));

        AssertKeyShownOnlyWhenAsked(ex, includeKeys);
    }

    [TestCase(false)]
    [TestCase(true)]
    public void NotModifiedWithoutAStaleValue(bool includeKeys)
    {
        using var cache = TestCaches.Create(o => o.IncludeKeysInTelemetry = includeKeys);

        var ex = Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await cache.GetOrLoadAsync<int, string>(PersonalKey, 0, static (_, context, _) => Task.FromResult(context.NotModified())));

        AssertKeyShownOnlyWhenAsked(ex, includeKeys);
    }
}
