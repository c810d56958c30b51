using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class TagTests
{
    private static CacheEntryOptions Tagged(params string[] tags) => new() { Tags = tags };

    [Test]
    public async Task RemoveByTag_InvalidatesEveryEntryWithTheTag_AndOnlyThose()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(time: time);
        await cache.SetAsync("a", "a1", Tagged("users"));
        await cache.SetAsync("b", "b1", Tagged("users", "admins"));
        await cache.SetAsync("c", "c1", Tagged("orders"));
        await cache.SetAsync("d", "d1");

        await cache.RemoveByTagAsync("users");

        Assert.That(await cache.GetOrLoadAsync("a", _ => Task.FromResult("a2"), Tagged("users")), Is.EqualTo("a2"));
        Assert.That(await cache.GetOrLoadAsync("b", _ => Task.FromResult("b2")), Is.EqualTo("b2"));
        Assert.That(await cache.GetOrLoadAsync("c", _ => Task.FromResult("c2")), Is.EqualTo("c1"));
        Assert.That(await cache.GetOrLoadAsync("d", _ => Task.FromResult("d2")), Is.EqualTo("d1"));
    }

    [Test]
    public async Task EntriesCreatedAfterTheInvalidation_AreServed()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(time: time);
        await cache.RemoveByTagAsync("users");
        time.Advance(TimeSpan.FromTicks(1));
        int calls = 0;

        await cache.GetOrLoadAsync("a", _ => Task.FromResult(++calls), Tagged("users"));
        await cache.GetOrLoadAsync("a", _ => Task.FromResult(++calls), Tagged("users"));

        Assert.That(calls, Is.EqualTo(1));
    }

    /// <summary>
    /// A load whose tags the call fixes is joined until one of its own tags is invalidated, not until any tag is: an
    /// invalidation of another group does not make every caller of a hot key start its own load (and, with a distributed
    /// lock, its own lock attempt). A load whose loader may choose its tags still stops being joined at any invalidation.
    /// </summary>
    [Test]
    public async Task ALoadWithItsOwnTags_IsStillJoined_AfterAnotherTagsInvalidation_ButNotAfterItsOwn()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(time: time);
        var loader = new TestCaches.GatedLoader<string>();
        Task<string> first = cache.GetOrLoadAsync("a", loader.Load, Tagged("users")).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "the load starts");
        time.Advance(TimeSpan.FromSeconds(1));

        await cache.RemoveByTagAsync("orders");
        time.Advance(TimeSpan.FromSeconds(1));
        Task<string> joined = cache.GetOrLoadAsync("a", loader.Load, Tagged("users")).AsTask();
        Assert.That(cache.WaitersFor("a"), Is.EqualTo(2), "another group's invalidation: the second caller joins");
        Assert.That(loader.Calls, Is.EqualTo(1));

        await cache.RemoveByTagAsync("users");
        time.Advance(TimeSpan.FromSeconds(1));
        var later = new TestCaches.GatedLoader<string>();
        Task<string> third = cache.GetOrLoadAsync("a", later.Load, Tagged("users")).AsTask();
        Assert.That(cache.WaitersFor("a"), Is.EqualTo(1), "its own tag invalidated: the third caller starts a new flight");

        loader.Gate.SetResult("before"); // one loader per key: the new flight loads once the old loader has ended
        await TestCaches.Until(() => later.Calls == 1, "the new flight loads");
        later.Gate.SetResult("after");
        Assert.That(await first, Is.EqualTo("before"));
        Assert.That(await joined, Is.EqualTo("before"));
        Assert.That(await third, Is.EqualTo("after"));
        Assert.That(await cache.GetOrLoadAsync("a", _ => Task.FromResult("unused"), Tagged("users")), Is.EqualTo("after"), "only the load after the invalidation was cached");

        // A loader that may choose its tags (through its context): any invalidation ends joining it.
        var context = new TestCaches.GatedLoader<string>();
        Task<string> withContext = cache.GetOrLoadAsync<int, string>("b", 0, (_, ctx, ct) => context.Load(ct)).AsTask();
        await TestCaches.Until(() => context.Calls == 1, "the load starts");
        time.Advance(TimeSpan.FromSeconds(1));
        await cache.RemoveByTagAsync("orders");
        time.Advance(TimeSpan.FromSeconds(1));
        var next = new TestCaches.GatedLoader<string>();
        Task<string> afterAny = cache.GetOrLoadAsync<int, string>("b", 0, (_, ctx, ct) => next.Load(ct)).AsTask();
        Assert.That(cache.WaitersFor("b"), Is.EqualTo(1), "any invalidation: a new flight");
        context.Gate.SetResult("b1");
        await TestCaches.Until(() => next.Calls == 1, "the new flight loads");
        next.Gate.SetResult("b2");
        Assert.That(await withContext, Is.EqualTo("b1"));
        Assert.That(await afterAny, Is.EqualTo("b2"));
    }

    [Test]
    public async Task ALoadRunningDuringTheInvalidation_IsNotCachedAsValid()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(time: time);
        var loader = new TestCaches.GatedLoader<string>();
        var loading = cache.GetOrLoadAsync("a", loader.Load, Tagged("users")).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "the load starts");

        time.Advance(TimeSpan.FromSeconds(1));
        await cache.RemoveByTagAsync("users");
        time.Advance(TimeSpan.FromSeconds(1));
        loader.Gate.SetResult("read before the invalidation");

        Assert.That(await loading, Is.EqualTo("read before the invalidation"), "Its own callers still get it.");
        Assert.That(await cache.GetOrLoadAsync("a", _ => Task.FromResult("fresh"), Tagged("users")), Is.EqualTo("fresh"));
    }

    [Test]
    public async Task RemoveByTag_IsOneL2Write_NoScan()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(l2: l2);
        for (int i = 0; i < 100; i++)
        {
            await cache.SetAsync($"k{i}", i, Tagged("t"));
        }

        int sets = l2.Sets;
        int gets = l2.Gets;
        await cache.RemoveByTagAsync("t");

        Assert.That(l2.Sets - sets, Is.EqualTo(1));
        Assert.That(l2.Gets - gets, Is.Zero);
    }

    [Test]
    public async Task AcrossTwoNodesSharingOneL2_TheOtherNodeStopsServingWithinTheCheckInterval()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        Action<CoalescingCacheOptions> options = o => o.TagCheckInterval = TimeSpan.FromSeconds(1);
        using var nodeA = TestCaches.Create(options, l2: l2, time: time);
        using var nodeB = TestCaches.Create(options, l2: l2, time: time);
        await nodeA.SetAsync("user:1", "v1", Tagged("users"));
        Assert.That(await nodeB.GetOrLoadAsync("user:1", _ => Task.FromResult("loaded-b"), Tagged("users")), Is.EqualTo("v1"), "B got it from L2 into its L1.");

        time.Advance(TimeSpan.FromMilliseconds(10));
        await nodeA.RemoveByTagAsync("users");
        time.Advance(TimeSpan.FromTicks(1)); // an entry created in the invalidation's own tick counts as invalidated
        Assert.That(await nodeA.GetOrLoadAsync("user:1", _ => Task.FromResult("v2"), Tagged("users")), Is.EqualTo("v2"));

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(await nodeB.GetOrLoadAsync("user:1", _ => Task.FromResult("loaded-b"), Tagged("users")), Is.EqualTo("v2"),
            "After the check interval B re-reads the tag, drops its L1 copy, and reads A's newer value from L2.");
    }

    [Test]
    public async Task AnL2EntryOlderThanItsTagsInvalidation_IsAMiss()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using (var writer = TestCaches.Create(l2: l2, time: time))
        {
            await writer.SetAsync("k", "old", Tagged("t"));
            time.Advance(TimeSpan.FromSeconds(1));
            await writer.RemoveByTagAsync("t");
        }

        time.Advance(TimeSpan.FromSeconds(1));
        using var reader = TestCaches.Create(l2: l2, time: time);
        Assert.That(await reader.GetOrLoadAsync("k", _ => Task.FromResult("new"), Tagged("t")), Is.EqualTo("new"));
    }

    [Test]
    public async Task RemoveByTagStar_InvalidatesEverything_TaggedOrNot_InL1AndInL2()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using var cache = TestCaches.Create(l2: l2, time: time);
        await cache.SetAsync("plain", "p1");
        await cache.SetAsync("tagged", "t1", Tagged("t"));
        time.Advance(TimeSpan.FromSeconds(1));

        await cache.RemoveByTagAsync("*");
        time.Advance(TimeSpan.FromTicks(1));

        Assert.That(cache.IsInL1("plain"), Is.False);
        Assert.That(await cache.GetOrLoadAsync("plain", _ => Task.FromResult("p2")), Is.EqualTo("p2"), "The L2 copy predates the invalidation too.");
        Assert.That(await cache.GetOrLoadAsync("tagged", _ => Task.FromResult("t2"), Tagged("t")), Is.EqualTo("t2"));
        Assert.That(await cache.GetOrLoadAsync("plain", _ => Task.FromResult("p3")), Is.EqualTo("p2"), "New entries are served.");
    }

    [Test]
    public void BadTags_Throw()
    {
        using var cache = TestCaches.Create();

        Assert.Throws<ArgumentNullException>(() => _ = cache.RemoveByTagAsync(null!));
        Assert.Throws<ArgumentException>(() => _ = cache.RemoveByTagAsync(""));
        Assert.Throws<ArgumentException>(() => _ = cache.SetAsync("k", 1, Tagged(new string('t', 257))));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = cache.SetAsync("k", 1, Tagged(Enumerable.Range(0, 65).Select(i => $"t{i}").ToArray())));
    }
}
