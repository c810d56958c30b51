using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (n): one typing rule, whatever holds the entry. The rule (the lead's decision): a key is read as
/// exactly the type it was cached as. Reading a <c>List&lt;int&gt;</c> entry as <c>IReadOnlyList&lt;int&gt;</c> throws
/// <see cref="CacheTypeMismatchException"/> whether the entry is a plain L1 value, an L1 item with tags or fail-safe,
/// or only in L2; and the failed read changes nothing (reading it as <c>List&lt;int&gt;</c> still works, without a load).
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
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using var cache = TestCaches.Create(o => { o.JitterRatio = 0; o.DefaultExpiration = TimeSpan.FromMinutes(1); o.DefaultLocalExpiration = TimeSpan.FromSeconds(1); }, l2: l2, time: time);
        await cache.GetOrLoadAsync("k", LoadsTheList);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.That(cache.IsInL1("k"), Is.False, "The entry has left L1; L2 still holds it.");

        var ex = Assert.ThrowsAsync<CacheTypeMismatchException>(
            async () => await cache.GetOrLoadAsync("k", LoadsAnother),
            "A List<int> entry (only in L2) was not recognised as another type: the loader replaced it.");
        Assert.That(ex!.CachedType, Is.EqualTo(typeof(List<int>)));
        Assert.That(await cache.GetOrLoadAsync("k", MustNotLoad), Is.EqualTo(Stored), "Read as the type it was cached as, the L2 entry is still there.");
    }
}
