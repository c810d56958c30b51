using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class FlagsTests
{
    private static CacheEntryOptions With(CacheEntryFlags flags) => new() { Flags = flags };

    private static async Task<(Internal.DefaultCoalescingCache Cache, FakeDistributedCache L2)> CacheWithDifferentLevelsAsync()
    {
        // L1 holds "l1", L2 holds "l2" for the same key.
        var l2 = new FakeDistributedCache();
        using (var other = TestCaches.Create(l2: l2))
        {
            await other.SetAsync("k", "l2");
        }

        var cache = TestCaches.Create(l2: l2);
        await cache.SetAsync("k", "l1", With(CacheEntryFlags.DisableDistributedCacheWrite));
        return (cache, l2);
    }

    [Test]
    public async Task DisableLocalCacheRead_ReadsL2()
    {
        var (cache, _) = await CacheWithDifferentLevelsAsync();
        using (cache)
        {
            Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("loader")), Is.EqualTo("l1"));
            Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("loader"), With(CacheEntryFlags.DisableLocalCacheRead)), Is.EqualTo("l2"));
        }
    }

    [Test]
    public async Task DisableDistributedCacheRead_CallsTheLoader()
    {
        var (cache, _) = await CacheWithDifferentLevelsAsync();
        using (cache)
        {
            Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("loader"), With(CacheEntryFlags.DisableLocalCacheRead | CacheEntryFlags.DisableDistributedCacheRead)), Is.EqualTo("loader"));
        }
    }

    [Test]
    public async Task DisableLocalCacheWrite_KeepsTheValueOutOfL1()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(l2: l2);

        await cache.GetOrLoadAsync("k", _ => Task.FromResult(1), With(CacheEntryFlags.DisableLocalCacheWrite));

        Assert.That(cache.IsInL1("k"), Is.False);
        Assert.That(l2.Sets, Is.EqualTo(1));
    }

    [Test]
    public async Task DisableDistributedCacheWrite_KeepsTheValueOutOfL2()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(l2: l2);

        await cache.GetOrLoadAsync("k", _ => Task.FromResult(1), With(CacheEntryFlags.DisableDistributedCacheWrite));

        Assert.That(cache.IsInL1("k"), Is.True);
        Assert.That(l2.Sets, Is.Zero);
    }

    [Test]
    public async Task DisableUnderlyingData_NeverCallsTheLoader()
    {
        using var cache = TestCaches.Create();
        int calls = 0;
        var options = With(CacheEntryFlags.DisableUnderlyingData);

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult(++calls), options), Is.Zero, "Miss: default.");
        await cache.SetAsync("k", 5);
        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult(++calls), options), Is.EqualTo(5), "Hit: the value.");
        Assert.That(calls, Is.Zero);
    }

    [Test]
    public async Task DisableUnderlyingData_DoesNotHandDefaultToCallersWithALoader()
    {
        var l2 = new FakeDistributedCache { ReadGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        using var cache = TestCaches.Create(l2: l2);

        var lookup = cache.GetOrLoadAsync("k", _ => Task.FromResult(-1), With(CacheEntryFlags.DisableUnderlyingData)).AsTask();
        var load = cache.GetOrLoadAsync("k", _ => Task.FromResult(7)).AsTask();
        l2.ReadGate.SetResult();

        // The loading caller never gets the lookup's default; the lookup may or may not see the load's value,
        // depending on whether the load's L2 write lands before the lookup's gated read returns.
        Assert.That(await load.WaitAsync(TimeSpan.FromSeconds(20)), Is.EqualTo(7));
        Assert.That(await lookup.WaitAsync(TimeSpan.FromSeconds(20)), Is.AnyOf(0, 7));
    }
}
