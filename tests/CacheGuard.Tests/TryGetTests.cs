using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class TryGetTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    [Test]
    public async Task TellsAMiss_AValue_AndACachedNotFound_Apart()
    {
        using var cache = TestCaches.Create();
        await cache.SetAsync("found", "v");
        await cache.GetOrLoadAsync<string?>("absent", _ => Task.FromResult<string?>(null));

        Assert.That(await cache.TryGetAsync<string>("never"), Is.EqualTo(new CacheLookup<string>(CacheLookupStatus.Miss, null)));
        Assert.That(await cache.TryGetAsync<string>("found"), Is.EqualTo(new CacheLookup<string>(CacheLookupStatus.Found, "v")));
        var absent = await cache.TryGetAsync<string?>("absent");
        Assert.That(absent.Status, Is.EqualTo(CacheLookupStatus.CachedNotFound));
        Assert.That(absent.Found, Is.False);
    }

    [Test]
    public async Task L2Hit_FillsL1()
    {
        var l2 = new FakeDistributedCache();
        using (var writer = TestCaches.Create(l2: l2))
        {
            await writer.SetAsync("k", 41);
        }

        using var cache = TestCaches.Create(l2: l2);
        Assert.That((await cache.TryGetAsync<int>("k")).Value, Is.EqualTo(41));
        Assert.That((await cache.TryGetAsync<int>("k")).Value, Is.EqualTo(41));
        Assert.That(l2.Gets, Is.EqualTo(1));
        Assert.That(cache.IsInL1("k"), Is.True);
    }

    [Test]
    public async Task ConcurrentLookupsOfAColdKey_ShareOneL2Read()
    {
        var l2 = new FakeDistributedCache { ReadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        using var cache = TestCaches.Create(l2: l2);

        var lookups = Enumerable.Range(0, 500).Select(_ => cache.TryGetAsync<int>("k").AsTask()).ToArray();
        await l2.ReadEntered.Task.WaitAsync(Guard);
        l2.ReadGate.SetResult();

        Assert.That((await Task.WhenAll(lookups).WaitAsync(Guard)).Select(l => l.Status), Has.All.EqualTo(CacheLookupStatus.Miss));
        Assert.That(l2.Gets, Is.EqualTo(1));
    }

    [Test]
    public async Task NeverCallsALoader_AndDoesNotJoinALoad()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<int>();
        var loading = cache.GetOrLoadAsync("k", loader.Load).AsTask();

        var lookup = await cache.TryGetAsync<int>("k").AsTask().WaitAsync(Guard);

        Assert.That(lookup.Status, Is.EqualTo(CacheLookupStatus.Miss), "A lookup answers at once; it does not wait for a load.");
        loader.Gate.SetResult(1);
        await loading;
        Assert.That((await cache.TryGetAsync<int>("k")).Value, Is.EqualTo(1));
    }

    [Test]
    public async Task AnotherTypeInL1_Throws()
    {
        using var cache = TestCaches.Create();
        await cache.SetAsync("k", "text");

        Assert.Throws<CacheTypeMismatchException>(() => _ = cache.TryGetAsync<int>("k"));
    }

    [Test]
    public void BadKeys_Throw()
    {
        using var cache = TestCaches.Create();

        Assert.Throws<ArgumentNullException>(() => _ = cache.TryGetAsync<int>(null!));
        Assert.Throws<ArgumentException>(() => _ = cache.TryGetAsync<int>(" "));
    }
}
