using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (j): what a node remembers about tags is bounded. An invalidation matters only to entries created
/// before it, and those are gone once older than the longest lifetime plus the fail-safe window; so a million distinct
/// tags, invalidated and used over hours of (fake) time, leave the managed heap flat after a forced collection.
/// </summary>
public class TagKnowledge_IsBounded
{
    private const int Tags = 1_000_000;
    private const int TagsPerSecond = 100;

    /// <summary>
    /// Remembering every tag costs over 100 bytes each (the string, its state, a dictionary node): over 100 MB for a
    /// million. Pruning keeps about two minutes of tags (12,000, a couple of MB). 16 MB sits far from both.
    /// </summary>
    private const long BoundBytes = 16L * 1024 * 1024;

    [Test]
    public async Task AMillionDistinctTagsOverTime_LeaveTheHeapFlat()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(
            o =>
            {
                o.JitterRatio = 0;
                o.DefaultExpiration = TimeSpan.FromMinutes(1);
                o.FailSafeMaxDuration = TimeSpan.FromMinutes(1);
                o.TagCheckInterval = TimeSpan.FromSeconds(1);
            },
            time: time);

        await UseTagsAsync(cache, time, 0, 20_000); // warm up: JIT, pools, L1's own bookkeeping
        long before = GC.GetTotalMemory(forceFullCollection: true);

        await UseTagsAsync(cache, time, 20_000, Tags);
        long after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(cache);

        long grown = after - before;
        TestContext.Out.WriteLine($"Heap grew by {grown / 1024.0 / 1024.0:F1} MB over {Tags - 20_000:N0} distinct tags and {(Tags - 20_000) / TagsPerSecond:N0} s of fake time.");
        Assert.That(grown, Is.LessThan(BoundBytes), $"The heap grew by {grown / 1024.0 / 1024.0:F1} MB: tag knowledge is not pruned.");
    }

    /// <summary>Invalidates tags first..last-1, one distinct tag at a time; every 100th also tags an entry and reads it; 100 tags per fake second.</summary>
    private static async Task UseTagsAsync(Internal.DefaultCoalescingCache cache, FakeTimeProvider time, int first, int last)
    {
        for (int i = first; i < last; i++)
        {
            string tag = $"tag-{i}";
            await cache.RemoveByTagAsync(tag);
            if (i % TagsPerSecond == 0)
            {
                time.Advance(TimeSpan.FromSeconds(1));
                var tagged = new CacheEntryOptions { Tags = [tag, $"tag-{i + 1}"] };
                string key = $"k{i / TagsPerSecond % 50}";
                await cache.SetAsync(key, i, tagged);
                await cache.GetOrLoadAsync(key, _ => Task.FromResult(-1), tagged);
            }
        }
    }
}
