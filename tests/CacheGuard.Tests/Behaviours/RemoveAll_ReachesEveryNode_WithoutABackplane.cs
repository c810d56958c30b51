using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (o): <c>RemoveByTagAsync("*")</c> on one node reaches the others through L2 within
/// <see cref="CoalescingCacheOptions.TagCheckInterval"/>, also without a backplane, like any other tag: once the
/// interval has passed, another node serves nothing created before it, neither from L2 nor from its own L1.
/// </summary>
public class RemoveAll_ReachesEveryNode_WithoutABackplane
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private static (Internal.DefaultCoalescingCache A, Internal.DefaultCoalescingCache B, FakeTimeProvider Time) TwoNodes()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        Action<CoalescingCacheOptions> options = o => { o.JitterRatio = 0; o.DefaultExpiration = TimeSpan.FromMinutes(10); o.TagCheckInterval = Interval; };
        return (TestCaches.Create(options, l2: l2, time: time), TestCaches.Create(options, l2: l2, time: time), time);
    }

    private static Func<CancellationToken, Task<string>> Loads(string value) => _ => Task.FromResult(value);

    [TestCase(false, TestName = "AnotherNodeStopsServingAnL2EntryCreatedBeforeRemoveAll(untagged)")]
    [TestCase(true, TestName = "AnotherNodeStopsServingAnL2EntryCreatedBeforeRemoveAll(tagged)")]
    public async Task AnotherNodeStopsServingAnL2EntryCreatedBeforeRemoveAll(bool tagged)
    {
        var (a, b, time) = TwoNodes();
        using (a)
        using (b)
        {
            CacheEntryOptions? options = tagged ? new CacheEntryOptions { Tags = ["t"] } : null;
            await a.GetOrLoadAsync("k", Loads("old"), options);
            time.Advance(TimeSpan.FromSeconds(1));

            await a.RemoveByTagAsync("*");
            time.Advance(Interval);

            Assert.That(await b.GetOrLoadAsync("k", Loads("new"), options), Is.EqualTo("new"), "B served an L2 entry that RemoveByTagAsync(\"*\") on A had invalidated.");
        }
    }

    [TestCase(false, TestName = "AnotherNodeStopsServingItsOwnL1CopyCreatedBeforeRemoveAll(untagged)")]
    [TestCase(true, TestName = "AnotherNodeStopsServingItsOwnL1CopyCreatedBeforeRemoveAll(tagged)")]
    public async Task AnotherNodeStopsServingItsOwnL1CopyCreatedBeforeRemoveAll(bool tagged)
    {
        var (a, b, time) = TwoNodes();
        using (a)
        using (b)
        {
            CacheEntryOptions? options = tagged ? new CacheEntryOptions { Tags = ["t"] } : null;
            await b.GetOrLoadAsync("k", Loads("old"), options);
            Assert.That(b.IsInL1("k"), Is.True);
            time.Advance(TimeSpan.FromSeconds(1));

            await a.RemoveByTagAsync("*");
            time.Advance(Interval);

            Assert.That(await b.GetOrLoadAsync("k", Loads("new"), options), Is.EqualTo("new"), "B served its L1 copy after RemoveByTagAsync(\"*\") on A, past the tag check interval.");
            Assert.That((await b.TryGetAsync<string>("k")).Value, Is.EqualTo("new"));
        }
    }
}
