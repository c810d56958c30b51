using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (c): fail-safe stands in with a stale value only while that value is still the key's value. A
/// value invalidated by one of its tags, or by <c>"*"</c> (on this node or another), is never served as a stand-in; and
/// no value is served later than its logical expiry plus <see cref="CoalescingCacheOptions.FailSafeMaxDuration"/>,
/// however many throttled attempts re-arm it in between.
/// </summary>
public class FailSafe_RespectsInvalidationAndItsLimit
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);

    private static Func<CancellationToken, Task<string>> Loads(string value) => _ => Task.FromResult(value);

    private static Task<string> SourceDown(CancellationToken _) => Task.FromException<string>(new SourceDownException());

    private static CacheEntryOptions Tagged(string tag) => new() { Tags = [tag] };

    [TestCase(true, TestName = "AStaleValueInvalidatedByItsTag_IsNeverServed(invalidated after it expired)")]
    [TestCase(false, TestName = "AStaleValueInvalidatedByItsTag_IsNeverServed(invalidated before it expired)")]
    public async Task AStaleValueInvalidatedByItsTag_IsNeverServed(bool invalidateAfterExpiry)
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.DefaultExpiration = Lifetime; o.JitterRatio = 0; o.FailSafe = true; }, time: time);
        await cache.GetOrLoadAsync("k", Loads("v0"), Tagged("t"));

        time.Advance(invalidateAfterExpiry ? Lifetime : Lifetime / 2);
        await cache.RemoveByTagAsync("t");
        time.Advance(invalidateAfterExpiry ? TimeSpan.FromSeconds(1) : Lifetime);

        Assert.ThrowsAsync<SourceDownException>(
            async () => await cache.GetOrLoadAsync("k", SourceDown, Tagged("t")),
            "Fail-safe served a value its tag had invalidated.");
    }

    [Test]
    public async Task AStaleValueInvalidatedByItsTag_IsNeverServed_FromL2()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        Action<CoalescingCacheOptions> options = o => { o.DefaultExpiration = Lifetime; o.JitterRatio = 0; o.FailSafe = true; };
        using var writer = TestCaches.Create(options, l2: l2, time: time);
        await writer.GetOrLoadAsync("k", Loads("v0"), Tagged("t"));
        time.Advance(Lifetime);
        await writer.RemoveByTagAsync("t");
        time.Advance(TimeSpan.FromSeconds(1));

        using var reader = TestCaches.Create(options, l2: l2, time: time);
        Assert.ThrowsAsync<SourceDownException>(
            async () => await reader.GetOrLoadAsync("k", SourceDown, Tagged("t")),
            "Fail-safe served an L2 value its tag had invalidated.");
    }

    [TestCase(true, TestName = "AStaleValueInvalidatedByRemoveAllOnAnotherNode_IsNeverServed(stale copy in the node's L1)")]
    [TestCase(false, TestName = "AStaleValueInvalidatedByRemoveAllOnAnotherNode_IsNeverServed(stale copy in L2 only)")]
    public async Task AStaleValueInvalidatedByRemoveAllOnAnotherNode_IsNeverServed(bool inL1)
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        Action<CoalescingCacheOptions> options = o => { o.DefaultExpiration = Lifetime; o.JitterRatio = 0; o.FailSafe = true; o.TagCheckInterval = TimeSpan.FromSeconds(1); };
        using var a = TestCaches.Create(options, l2: l2, time: time);
        using var b = TestCaches.Create(options, l2: l2, time: time);
        await (inL1 ? b : a).GetOrLoadAsync("k", Loads("v0"));
        time.Advance(Lifetime);

        await a.RemoveByTagAsync("*");
        time.Advance(TimeSpan.FromSeconds(1)); // the tag check interval: B must know by now

        Assert.ThrowsAsync<SourceDownException>(
            async () => await b.GetOrLoadAsync("k", SourceDown),
            "Fail-safe served a value that RemoveByTagAsync(\"*\") on another node had invalidated.");
    }

    [Test]
    public async Task NoValueIsServedPastItsExpiryPlusFailSafeMaxDuration_HoweverManyCallersKeepArriving()
    {
        var time = new FakeTimeProvider();
        TimeSpan max = TimeSpan.FromMinutes(5);
        using var cache = TestCaches.Create(
            o => { o.DefaultExpiration = Lifetime; o.JitterRatio = 0; o.FailSafe = true; o.FailSafeMaxDuration = max; o.FailSafeThrottleDuration = TimeSpan.FromSeconds(30); },
            time: time);
        await cache.GetOrLoadAsync("k", Loads("v0"));
        TimeSpan limit = Lifetime + max; // since the load

        // A caller every 7 s (never exactly on the limit), from the expiry to two minutes past the limit.
        for (TimeSpan since = Lifetime; since < limit + TimeSpan.FromMinutes(2); since += TimeSpan.FromSeconds(7))
        {
            time.Advance(since - (time.GetUtcNow() - FakeTimeProvider.Epoch));
            if (since < limit)
            {
                Assert.That(await cache.GetOrLoadAsync("k", SourceDown), Is.EqualTo("v0"), $"Fail-safe did not stand in {since} after the load.");
            }
            else
            {
                Assert.ThrowsAsync<SourceDownException>(
                    async () => await cache.GetOrLoadAsync("k", SourceDown),
                    $"The stale value was served {since} after the load, past its expiry ({Lifetime}) plus FailSafeMaxDuration ({max}).");
            }
        }
    }
}
