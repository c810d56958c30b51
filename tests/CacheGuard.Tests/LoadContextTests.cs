using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class LoadContextTests
{
    [Test]
    public async Task TheLoaderSetsTheLifetimeFromItsResult()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using var cache = TestCaches.Create(o => o.JitterRatio = 0, l2: l2, time: time);

        await cache.GetOrLoadAsync<int, string>("draft", 0, static (_, ctx, _) => { ctx.Expiration = TimeSpan.FromSeconds(10); return Task.FromResult("draft"); });
        await cache.GetOrLoadAsync<int, string>("published", 0, static (_, ctx, _) => { ctx.Expiration = TimeSpan.FromHours(1); return Task.FromResult("published"); });

        Assert.That(l2.LastOptions["draft"].AbsoluteExpirationRelativeToNow, Is.EqualTo(TimeSpan.FromSeconds(10)));
        Assert.That(l2.LastOptions["published"].AbsoluteExpirationRelativeToNow, Is.EqualTo(TimeSpan.FromHours(1)));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(cache.IsInL1("draft"), Is.False);
        Assert.That(cache.IsInL1("published"), Is.True);
    }

    [Test]
    public async Task TheLoaderSetsTagsAndLocalExpiration()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => o.JitterRatio = 0, time: time);

        await cache.GetOrLoadAsync<int, int>("k", 0, static (_, ctx, _) =>
        {
            ctx.Tags = ["from-result"];
            ctx.LocalExpiration = TimeSpan.FromSeconds(5);
            return Task.FromResult(1);
        });
        time.Advance(TimeSpan.FromTicks(1));
        await cache.RemoveByTagAsync("from-result");
        time.Advance(TimeSpan.FromTicks(1));

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult(2)), Is.EqualTo(2));
    }

    [Test]
    public async Task DoNotCache_TheValueReachesEveryCaller_ButIsNotCached()
    {
        using var cache = TestCaches.Create(l2: new FakeDistributedCache());
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int loads = 0;

        var calls = Enumerable.Range(0, 10).Select(_ => cache.GetOrLoadAsync<TaskCompletionSource, string>("k", gate, async (g, ctx, _) =>
        {
            Interlocked.Increment(ref loads);
            await g.Task;
            ctx.DoNotCache();
            return "uncacheable";
        }).AsTask()).ToArray();
        gate.SetResult();

        Assert.That(await Task.WhenAll(calls), Has.All.EqualTo("uncacheable"));
        Assert.That(loads, Is.EqualTo(1));
        Assert.That(cache.IsInL1("k"), Is.False);
        Assert.That((await cache.TryGetAsync<string>("k")).Status, Is.EqualTo(CacheLookupStatus.Miss));
    }

    [Test]
    public async Task TheLoaderSeesTheStaleValue_AndNotModifiedReArmsIt()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.DefaultExpiration = TimeSpan.FromMinutes(1); o.JitterRatio = 0; o.FailSafe = true; }, time: time);
        var etagged = new Document("v1", "etag-1");
        await cache.GetOrLoadAsync("doc", etagged, static (d, _) => Task.FromResult(d));
        time.Advance(TimeSpan.FromMinutes(1));
        Document? seen = null;
        DateTimeOffset? seenCreated = null;

        Document result = await cache.GetOrLoadAsync<int, Document>("doc", 0, (_, ctx, _) =>
        {
            seen = ctx.StaleValue;
            seenCreated = ctx.StaleValueCreated;
            Assert.That(ctx.HasStaleValue, Is.True);
            return Task.FromResult(ctx.StaleValue!.ETag == "etag-1" ? ctx.NotModified() : new Document("v2", "etag-2"));
        });

        Assert.That(seen, Is.SameAs(etagged));
        Assert.That(seenCreated, Is.EqualTo(FakeTimeProvider.Epoch));
        Assert.That(result, Is.SameAs(etagged));
        time.Advance(TimeSpan.FromMinutes(1) - TimeSpan.FromTicks(1));
        Assert.That(await cache.GetOrLoadAsync("doc", _ => Task.FromResult(new Document("x", "x"))), Is.SameAs(etagged), "Re-armed for a full lifetime.");
    }

    [Test]
    public async Task WithoutAStaleValue_NotModifiedIsAClearError()
    {
        using var cache = TestCaches.Create(o => o.IncludeKeysInTelemetry = true);

        var ex = Assert.ThrowsAsync<InvalidOperationException>(async () =>
            await cache.GetOrLoadAsync<int, int>("k", 0, static (_, ctx, _) =>
            {
                Assert.That(ctx.HasStaleValue, Is.False);
                return Task.FromResult(ctx.NotModified());
            }));
        Assert.That(ex!.Message, Does.Contain("'k'").And.Contain("HasStaleValue"));
    }

    [Test]
    public void InvalidLifetimesFromTheLoader_AreRejected()
    {
        using var cache = TestCaches.Create();

        var ex = Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () =>
            await cache.GetOrLoadAsync<int, int>("k", 0, static (_, ctx, _) => { ctx.Expiration = TimeSpan.Zero; return Task.FromResult(1); }));
        Assert.That(ex!.Message, Does.Contain("LoadContext.Expiration"));
    }

    [Test]
    public async Task HitsAllocateNoContext()
    {
        using var cache = TestCaches.Create();
        Func<int, LoadContext<int>, CancellationToken, Task<int>> loader = static (s, _, _) => Task.FromResult(s);
        await cache.GetOrLoadAsync("k", 7, loader);
        for (int i = 0; i < 100; i++)
        {
            await cache.GetOrLoadAsync("k", 7, loader);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        int sum = 0;
        for (int i = 0; i < 1000; i++)
        {
            ValueTask<int> hit = cache.GetOrLoadAsync("k", 7, loader);
            sum += hit.IsCompletedSuccessfully ? hit.Result : -1_000_000;
        }

        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
        Assert.That(sum, Is.EqualTo(7000));
    }

    public sealed record Document(string Body, string ETag);
}
