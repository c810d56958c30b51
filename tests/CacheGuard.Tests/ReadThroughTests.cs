using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class ReadThroughTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    [Test]
    public async Task Miss_LoadsOnce_ThenHitsComeFromL1()
    {
        using var cache = TestCaches.Create();
        int calls = 0;

        for (int i = 0; i < 5; i++)
        {
            string value = await cache.GetOrLoadAsync("user:1", _ => { calls++; return Task.FromResult("alice"); });
            Assert.That(value, Is.EqualTo("alice"));
        }

        Assert.That(calls, Is.EqualTo(1));
        Assert.That(cache.HasDistributedCache, Is.False, "No L2 configured: the embedded, L1-only default.");
    }

    [Test]
    public async Task Hit_ReturnsTheCachedInstance_NotACopy()
    {
        using var cache = TestCaches.Create(l2: new FakeDistributedCache());
        var original = new List<int> { 1, 2, 3 };

        var first = await cache.GetOrLoadAsync("list", _ => Task.FromResult(original));
        var second = await cache.GetOrLoadAsync("list", _ => Task.FromResult(new List<int>()));

        Assert.That(first, Is.SameAs(original));
        Assert.That(second, Is.SameAs(original));
    }

    [Test]
    public async Task StateOverload_PassesTheState_AndHitsAllocateNothing()
    {
        using var cache = TestCaches.Create();
        var state = new object();
        object? seen = null;
        await cache.GetOrLoadAsync("key", state, (s, _) => { seen = s; return Task.FromResult(42); });
        Assert.That(seen, Is.SameAs(state));

        static Task<int> Never(object s, CancellationToken ct) => throw new AssertionException("hit expected");
        Func<object, CancellationToken, Task<int>> loader = Never;
        for (int i = 0; i < 100; i++)
        {
            await cache.GetOrLoadAsync("key", state, loader); // warm up JIT and tiering
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        int sum = 0;
        for (int i = 0; i < 1000; i++)
        {
            ValueTask<int> hit = cache.GetOrLoadAsync("key", state, loader);
            sum += hit.IsCompletedSuccessfully ? hit.Result : -1_000_000;
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(sum, Is.EqualTo(42_000));
        Assert.That(allocated, Is.Zero, "An L1 hit through the state overload must allocate nothing.");
    }

    [Test]
    public async Task L2Hit_PopulatesL1_WithoutCallingTheLoader()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using (var writer = TestCaches.Create(l2: l2, time: time))
        {
            await writer.SetAsync("k", "from-l2");
        }

        using var reader = TestCaches.Create(l2: l2, time: time);
        int calls = 0;
        string value = await reader.GetOrLoadAsync("k", _ => { calls++; return Task.FromResult("from-loader"); });
        int readsAfterFirst = l2.Gets;
        string again = await reader.GetOrLoadAsync("k", _ => { calls++; return Task.FromResult("from-loader"); });

        Assert.That(value, Is.EqualTo("from-l2"));
        Assert.That(again, Is.EqualTo("from-l2"));
        Assert.That(calls, Is.Zero);
        Assert.That(readsAfterFirst, Is.EqualTo(1));
        Assert.That(l2.Gets, Is.EqualTo(1), "The second read must come from L1.");
    }

    [Test]
    public async Task LoadedValue_IsWrittenToL2_ThenL1()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(l2: l2);
        bool l1HadItDuringL2Write = true;
        l2.OnSet = _ => l1HadItDuringL2Write = cache.IsInL1("k");

        await cache.GetOrLoadAsync("k", _ => Task.FromResult("v"));

        Assert.That(l2.Sets, Is.EqualTo(1));
        Assert.That(l1HadItDuringL2Write, Is.False, "L1 must be written after L2.");
        Assert.That(cache.IsInL1("k"), Is.True);
    }

    [Test]
    public async Task L2Key_IsThePrefixPlusTheKey()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(o => o.KeyPrefix = "app1:", l2: l2);

        await cache.GetOrLoadAsync("user:7", _ => Task.FromResult(7));

        Assert.That(l2.Keys, Is.EquivalentTo(new[] { "app1:user:7" }));
    }

    [Test]
    public async Task L1Expiry_FollowsTheInjectedClock()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.DefaultExpiration = TimeSpan.FromSeconds(60); o.JitterRatio = 0; }, time: time);
        int calls = 0;
        Task<int> Load(CancellationToken _) => Task.FromResult(++calls);

        await cache.GetOrLoadAsync("k", Load);
        time.Advance(TimeSpan.FromSeconds(60) - TimeSpan.FromTicks(1));
        Assert.That(await cache.GetOrLoadAsync("k", Load), Is.EqualTo(1), "Just before expiry: still cached.");
        time.Advance(TimeSpan.FromTicks(1));
        Assert.That(await cache.GetOrLoadAsync("k", Load), Is.EqualTo(2), "At expiry: reloaded.");
    }

    [Test]
    public async Task LocalExpiration_ShorterThanL2_RefillsL1FromL2()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using var cache = TestCaches.Create(o => { o.JitterRatio = 0; }, l2: l2, time: time);
        var options = new CacheEntryOptions { Expiration = TimeSpan.FromMinutes(10), LocalExpiration = TimeSpan.FromSeconds(30) };
        int calls = 0;

        await cache.GetOrLoadAsync("k", _ => Task.FromResult(++calls), options);
        time.Advance(TimeSpan.FromSeconds(31));
        int value = await cache.GetOrLoadAsync("k", _ => Task.FromResult(++calls), options);

        Assert.That(value, Is.EqualTo(1));
        Assert.That(calls, Is.EqualTo(1), "L1 expired, L2 still had it.");
        Assert.That(l2.Gets, Is.EqualTo(2));
        Assert.That(l2.LastOptions["k"].AbsoluteExpirationRelativeToNow, Is.EqualTo(TimeSpan.FromMinutes(10)));
    }

    [Test]
    public async Task L2EntryPastItsLogicalExpiry_IsAMiss()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(); // keeps entries forever: only the envelope's expiry can tell
        using (var writer = TestCaches.Create(o => o.JitterRatio = 0, l2: l2, time: time))
        {
            await writer.SetAsync("k", 1, new CacheEntryOptions { Expiration = TimeSpan.FromSeconds(10) });
        }

        time.Advance(TimeSpan.FromSeconds(10));
        using var reader = TestCaches.Create(l2: l2, time: time);
        Assert.That(await reader.GetOrLoadAsync("k", _ => Task.FromResult(2)), Is.EqualTo(2));
    }

    [Test]
    public async Task SetAsync_WritesBothLevels_RemoveAsync_ClearsBoth()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(l2: l2);

        await cache.SetAsync("k", "set");
        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("loaded")), Is.EqualTo("set"));
        Assert.That(l2.Keys, Does.Contain("k"));
        Assert.That(l2.Gets, Is.Zero, "Set wrote L1 too: no L2 read needed.");

        await cache.RemoveAsync("k");
        using var otherNode = TestCaches.Create(l2: l2);
        Assert.That((await otherNode.TryGetAsync<string>("k")).Status, Is.EqualTo(CacheLookupStatus.Miss), "L2 holds a removal mark, which reads as a miss");
        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("loaded")), Is.EqualTo("loaded"));
    }

    [Test]
    public async Task SetDuringALoad_TheLoadsOlderResultDoesNotOverwriteIt()
    {
        using var cache = TestCaches.Create(l2: new FakeDistributedCache());
        var loader = new TestCaches.GatedLoader<string>();

        var loading = cache.GetOrLoadAsync("k", loader.Load);
        await cache.SetAsync("k", "newer");
        loader.Gate.SetResult("older");

        Assert.That(await loading.AsTask().WaitAsync(Guard), Is.EqualTo("older"), "Its own callers still get the load's result.");
        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("reload")), Is.EqualTo("newer"));
    }

    [Test]
    public async Task RemoveDuringALoad_TheLoadsResultIsNotCached()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<string>();

        var loading = cache.GetOrLoadAsync("k", loader.Load);
        await cache.RemoveAsync("k");
        loader.Gate.SetResult("stale");
        await loading.AsTask().WaitAsync(Guard);

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("fresh")), Is.EqualTo("fresh"));
    }

    [Test]
    public void LoaderException_ReachesTheCaller_AndIsNotCached()
    {
        using var cache = TestCaches.Create();
        int calls = 0;

        Assert.ThrowsAsync<TimeoutException>(async () => await cache.GetOrLoadAsync<int>("k", _ => { calls++; throw new TimeoutException("db down"); }));
        Assert.ThrowsAsync<TimeoutException>(async () => await cache.GetOrLoadAsync<int>("k", async _ => { calls++; await Task.Yield(); throw new TimeoutException("db down"); }));

        Assert.That(calls, Is.EqualTo(2));
        Assert.That(cache.InFlightCount, Is.Zero);
    }

    [Test]
    public void LoaderReturningANullTask_IsAClearError()
    {
        using var cache = TestCaches.Create(o => o.IncludeKeysInTelemetry = true);

        var ex = Assert.ThrowsAsync<InvalidOperationException>(async () => await cache.GetOrLoadAsync<string>("k", _ => null!));
        Assert.That(ex!.Message, Does.Contain("'k'").And.Contain("null Task"));

        using var hiding = TestCaches.Create();
        ex = Assert.ThrowsAsync<InvalidOperationException>(async () => await hiding.GetOrLoadAsync<string>("secret-key", _ => null!));
        Assert.That(ex!.Message, Does.Contain("null Task").And.Not.Contain("secret-key"), "Keys appear in messages only with IncludeKeysInTelemetry.");
    }

    [Test]
    public async Task Metrics_CountHitsMissesLoadsAndJoins()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(l2: l2);
        using var metrics = new MetricCapture(cache.Name);
        var loader = new TestCaches.GatedLoader<int>();

        var calls = Enumerable.Range(0, 3).Select(_ => cache.GetOrLoadAsync("k", loader.Load).AsTask()).ToArray();
        await TestCaches.Until(() => loader.Calls == 1, "the loader runs");
        loader.Gate.SetResult(1);
        await Task.WhenAll(calls).WaitAsync(Guard);
        await cache.GetOrLoadAsync("k", loader.Load);

        Assert.That(metrics["cacheguard.cache.misses"], Is.EqualTo(3));
        Assert.That(metrics["cacheguard.cache.coalesced"], Is.EqualTo(2));
        Assert.That(metrics["cacheguard.cache.loads"], Is.EqualTo(1));
        Assert.That(metrics["cacheguard.cache.load.duration"], Is.EqualTo(1));
        Assert.That(metrics["cacheguard.cache.hits|cache.level=l1"], Is.EqualTo(1));
    }
}
