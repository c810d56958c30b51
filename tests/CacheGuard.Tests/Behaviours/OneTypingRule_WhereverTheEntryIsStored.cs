using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (n): one typing rule, whatever holds the entry: a key is read as exactly the type it was cached as.
/// Reading a <c>List&lt;int&gt;</c> entry as <c>IReadOnlyList&lt;int&gt;</c> never returns it: in L1 (a plain value, or an
/// item with tags or fail-safe) it throws <see cref="CacheTypeMismatchException"/> and changes nothing; an entry only in
/// L2 is a logged miss (it may come from another version of the application).
/// </summary>
public class OneTypingRule_WhereverTheEntryIsStored
{
    private static readonly List<int> Stored = [1, 2, 3];

    private static Task<List<int>> LoadsTheList(CancellationToken _) => Task.FromResult(Stored);

    private static Task<IReadOnlyList<int>> LoadsAnother(CancellationToken _) => Task.FromResult<IReadOnlyList<int>>([9]);

    private static Task<List<int>> MustNotLoad(CancellationToken _) => throw new AssertionException("The entry was lost: the loader ran.");

    private static async Task AssertOnlyTheCachedTypeReadsAsync(Internal.DefaultCoalescingCache cache, CacheEntryOptions? options, string state)
    {
        var ex = Assert.ThrowsAsync<CacheTypeMismatchException>(
            async () => await cache.GetOrLoadAsync("k", LoadsAnother, options),
            $"A List<int> entry ({state}) was read as IReadOnlyList<int>.");
        Assert.That(ex!.CachedType, Is.EqualTo(typeof(List<int>)));
        Assert.That(ex.RequestedType, Is.EqualTo(typeof(IReadOnlyList<int>)));
        Assert.That(await cache.GetOrLoadAsync("k", MustNotLoad, options), Is.EqualTo(Stored), "Read as the type it was cached as, the entry is still there.");
    }

    [Test]
    public async Task APlainL1Entry()
    {
        using var cache = TestCaches.Create();
        await cache.GetOrLoadAsync("k", LoadsTheList);

        await AssertOnlyTheCachedTypeReadsAsync(cache, null, "a plain L1 entry");
    }

    [Test]
    public async Task APlainL1Entry_ThroughTryGet()
    {
        using var cache = TestCaches.Create();
        await cache.GetOrLoadAsync("k", LoadsTheList);

        Assert.ThrowsAsync<CacheTypeMismatchException>(
            async () => await cache.TryGetAsync<IReadOnlyList<int>>("k"),
            "TryGetAsync read a plain List<int> entry as IReadOnlyList<int>.");
    }

    [Test]
    public async Task ATaggedL1Item()
    {
        using var cache = TestCaches.Create();
        var tagged = new CacheEntryOptions { Tags = ["t"] };
        await cache.GetOrLoadAsync("k", LoadsTheList, tagged);

        await AssertOnlyTheCachedTypeReadsAsync(cache, tagged, "an L1 item with tags");
    }

    [Test]
    public async Task AFailSafeL1Item()
    {
        using var cache = TestCaches.Create(o => o.FailSafe = true);
        await cache.GetOrLoadAsync("k", LoadsTheList);

        await AssertOnlyTheCachedTypeReadsAsync(cache, null, "a fail-safe L1 item");
    }

    [Test]
    public async Task AnEntryOnlyInL2()
    {
        // The same rule decides which reads succeed; what a mismatch does differs by level, as documented: in L1 it is a
        // bug in the calling code (an exception), in L2 it may come from another version of the application (a logged
        // miss, overwritten by the load).
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var logs = new LogCapture();
        using var cache = TestCaches.Create(o => { o.JitterRatio = 0; o.DefaultExpiration = TimeSpan.FromMinutes(1); o.DefaultLocalExpiration = TimeSpan.FromSeconds(1); }, l2: l2, time: time, logs: logs);
        await cache.GetOrLoadAsync("k", LoadsTheList);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(cache.IsInL1("k"), Is.False, "The entry has left L1; L2 still holds it.");

        IReadOnlyList<int> read = await cache.GetOrLoadAsync("k", LoadsAnother);

        Assert.That(read, Is.EqualTo(new[] { 9 }), "A List<int> entry (only in L2) was read as IReadOnlyList<int>.");
        Assert.That(logs.Count(Internal.Log.L2PayloadRejectedId), Is.EqualTo(1), "The L2 entry of another type is a logged miss.");
    }
}
