using CacheGuard.Tests.Support;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (h): everything the cache keeps in L2 besides entries (tag stamps, load lock keys) lives in a key
/// space no user key can reach, and the keys of named caches sharing one L2 never collide with each other's or the
/// default cache's. Each test picks user keys equal to what the current code uses internally and asserts that values
/// never cross.
/// </summary>
public class InternalKeys_NeverCollideWithUserKeys
{
    /// <summary>What the current code writes a tag's invalidation stamp under (no prefix).</summary>
    private const string StampKeyOfTagX = "__cacheguard:tag:x";

    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    private static Func<CancellationToken, Task<string>> Loads(string value) => _ => Task.FromResult(value);

    [Test]
    public async Task AUserKeyThatLooksLikeATagStamp_KeepsItsValue_WhenTheTagIsInvalidated()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using var a = TestCaches.Create(l2: l2, time: time);
        await a.SetAsync(StampKeyOfTagX, "user value");

        await a.RemoveByTagAsync("x");

        using var b = TestCaches.Create(l2: l2, time: time);
        Assert.That(await b.GetOrLoadAsync(StampKeyOfTagX, Loads("lost")), Is.EqualTo("user value"), "Invalidating tag 'x' overwrote the user entry under the stamp's key.");
    }

    [Test]
    public async Task ATagInvalidation_SurvivesAUserKeyThatLooksLikeItsStamp()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        using var a = TestCaches.Create(o => o.JitterRatio = 0, l2: l2, time: time);
        var taggedX = new CacheEntryOptions { Tags = ["x"] };
        await a.SetAsync("entry", "old", taggedX);
        time.Advance(TimeSpan.FromSeconds(1));
        await a.RemoveByTagAsync("x");
        time.Advance(TimeSpan.FromSeconds(1));

        await a.SetAsync(StampKeyOfTagX, "user value");

        using var b = TestCaches.Create(o => o.JitterRatio = 0, l2: l2, time: time);
        Assert.That(await b.GetOrLoadAsync("entry", Loads("fresh"), taggedX), Is.EqualTo("fresh"), "A user entry overwrote tag 'x''s invalidation stamp: another node served what the tag had invalidated.");
    }

    [Test]
    public async Task NamedCachesAndTheDefaultCache_SharingOneL2_NeverSeeEachOthersEntries()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        ICoalescingCacheProvider Node()
        {
            var services = new ServiceCollection();
            services.AddSingleton<TimeProvider>(time);
            services.AddSingleton<IDistributedCache>(l2);
            services.AddCoalescingCache();
            services.AddCoalescingCache("a");
            services.AddCoalescingCache("a:b");
            return services.BuildServiceProvider().GetRequiredService<ICoalescingCacheProvider>();
        }

        ICoalescingCacheProvider writer = Node();
        await writer.GetCache("a").SetAsync("b:x", "from cache 'a', key 'b:x'");
        await writer.GetCache("a:b").SetAsync("x", "from cache 'a:b', key 'x'");
        await writer.GetCache(string.Empty).SetAsync("a:b:x", "from the default cache, key 'a:b:x'");

        ICoalescingCacheProvider reader = Node();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(await reader.GetCache("a").GetOrLoadAsync("b:x", Loads("missing")), Is.EqualTo("from cache 'a', key 'b:x'"));
            Assert.That(await reader.GetCache("a:b").GetOrLoadAsync("x", Loads("missing")), Is.EqualTo("from cache 'a:b', key 'x'"));
            Assert.That(await reader.GetCache(string.Empty).GetOrLoadAsync("a:b:x", Loads("missing")), Is.EqualTo("from the default cache, key 'a:b:x'"));
        }
    }

    [Test]
    public async Task AUserKeyEqualToALockKey_NeitherTouchesTheLockNorSharesAValue()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var loadLock = new TestLoadLock(time, keySpace: l2); // the lock lives in L2's key space, as Redis's does
        using var a = TestNodes.Create(time, l2, loadLock: loadLock);
        using var d = TestNodes.Create(time, l2);

        var loader = new TestCaches.GatedLoader<string>();
        var loading = a.GetOrLoadAsync("k", loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "A loads under the lock");
        Assert.That(loadLock.Held, Is.EqualTo(1));
        string lockKey = loadLock.Keys.Last();
        byte[] token = l2.Raw(lockKey)!;

        // A user key equal to the lock key. Rejecting it as a key is one way to keep it out of the lock's key space.
        bool accepted = true;
        try
        {
            await d.SetAsync(lockKey, "user value");
        }
        catch (ArgumentException)
        {
            accepted = false;
        }

        Assert.That(l2.Raw(lockKey), Is.EqualTo(token), $"Writing user key '{lockKey}' overwrote the load lock held under the same L2 key.");
        loader.Gate.SetResult("loaded");
        Assert.That(await loading.WaitAsync(Guard), Is.EqualTo("loaded"));
        using var reader = TestNodes.Create(time, l2);
        using (Assert.EnterMultipleScope())
        {
            if (accepted)
            {
                Assert.That(await reader.GetOrLoadAsync(lockKey, Loads("missing")), Is.EqualTo("user value"), $"User key '{lockKey}' lost its value to the locked load.");
            }

            Assert.That(await reader.GetOrLoadAsync("k", Loads("missing")), Is.EqualTo("loaded"));
        }
    }

    [Test]
    public async Task AKeysOwnEntry_NeverLooksLikeItsLoadLockBeingHeld()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var loadLock = new TestLoadLock(time, keySpace: l2);
        using var a = TestNodes.Create(time, l2, o => { o.FailSafe = true; o.DefaultExpiration = TimeSpan.FromMinutes(1); }, loadLock: loadLock);
        Assert.That(await a.GetOrLoadAsync("k", Loads("v0")), Is.EqualTo("v0"));
        time.Advance(TimeSpan.FromMinutes(1)); // logically expired; kept in L2 for fail-safe

        var reload = new TestCaches.GatedLoader<string>();
        var call = a.GetOrLoadAsync("k", reload.Load).AsTask();
        await TestCaches.Until(() => reload.Calls == 1 || loadLock.Waiting > 0, "A reloads, or waits for the lock");

        Assert.That(loadLock.Waiting, Is.Zero, "The key's own L2 entry, kept for fail-safe, occupied its lock key: the reload waited for a lock nobody held.");
        reload.Gate.SetResult("v1");
        Assert.That(await call.WaitAsync(Guard), Is.EqualTo("v1"));
    }
}
