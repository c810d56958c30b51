using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (a), the read paths: an L2 read that started before a <c>SetAsync</c>, <c>RemoveAsync</c>,
/// <c>RemoveByTagAsync("*")</c> or backplane invalidation of its key answers after it, with the old value. Callers
/// that started before may get that value; a caller that starts after the invalidation completed never does, so the
/// read must not fill L1 with it. Every read path: a load's L2 hit, <c>TryGetAsync</c>, a batch, the load lock owner's
/// value, and early refresh's probe of L2.
/// </summary>
public class AValueReadBeforeAnInvalidation_NeverLandsAfterIt
{
    private const string Key = "item-42";
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    private static Func<CancellationToken, Task<string>> Loads(string value) => _ => Task.FromResult(value);

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task ALoadsL2Hit_ThatAnswersAfterTheInvalidation_IsNotServedToLaterCallers(Invalidation kind)
    {
        using var cluster = new Cluster();
        await cluster.Writer.SetAsync(Key, "v1");

        cluster.ViewA.HoldReads = ControlledDistributedCache.IsEntry; // the only entry: the key's
        var first = cluster.A.GetOrLoadAsync(Key, Loads("fresh")).AsTask();
        HeldCall read = await cluster.ViewA.NextHeldAsync();
        cluster.ViewA.HoldReads = null;

        await cluster.InvalidateAsync(kind, Key);
        read.Release();
        await first.WaitAsync(Guard); // started before the invalidation: may get v1

        Assert.That(
            await cluster.A.GetOrLoadAsync(Key, Loads("fresh")),
            Is.EqualTo(Cluster.Expected(kind, "fresh")),
            $"A caller that started after {kind} completed got the value an older L2 read brought back.");
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task ALookupsL2Fill_ThatAnswersAfterTheInvalidation_IsNotServedToLaterCallers(Invalidation kind)
    {
        using var cluster = new Cluster();
        await cluster.Writer.SetAsync(Key, "v1");

        cluster.ViewA.HoldReads = ControlledDistributedCache.IsEntry; // the only entry: the key's
        var lookup = cluster.A.TryGetAsync<string>(Key).AsTask();
        HeldCall read = await cluster.ViewA.NextHeldAsync();
        cluster.ViewA.HoldReads = null;

        await cluster.InvalidateAsync(kind, Key);
        read.Release();
        await lookup.WaitAsync(Guard);

        Assert.That(
            await cluster.A.GetOrLoadAsync(Key, Loads("fresh")),
            Is.EqualTo(Cluster.Expected(kind, "fresh")),
            $"TryGetAsync filled L1 with what an L2 read that started before {kind} brought back.");
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task ALookupThatStartsAfterTheInvalidation_DoesNotJoinALookupThatStartedBefore(Invalidation kind)
    {
        using var cluster = new Cluster();
        await cluster.Writer.SetAsync(Key, "v1");

        cluster.ViewA.HoldReads = ControlledDistributedCache.IsEntry; // the only entry: the key's
        var before = cluster.A.TryGetAsync<string>(Key).AsTask();
        HeldCall read = await cluster.ViewA.NextHeldAsync();
        cluster.ViewA.HoldReads = null;

        await cluster.InvalidateAsync(kind, Key);
        var after = cluster.A.TryGetAsync<string>(Key).AsTask();
        read.Release();
        await before.WaitAsync(Guard);

        CacheLookup<string> found = await after.WaitAsync(Guard);
        CacheLookup<string> expected = kind is Invalidation.Set or Invalidation.Backplane
            ? new CacheLookup<string>(CacheLookupStatus.Found, "v2")
            : default;
        Assert.That(found, Is.EqualTo(expected), $"A lookup that started after {kind} completed shared the answer of one that started before.");
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task ABatchsL2Hit_ThatAnswersAfterTheInvalidation_IsNotServedToLaterCallers(Invalidation kind)
    {
        using var cluster = new Cluster();
        await cluster.Writer.SetAsync(Key, "v1");

        cluster.ViewA.HoldReads = ControlledDistributedCache.IsEntry; // the only entry: the key's
        var batch = cluster.A.GetOrLoadManyAsync<string>(
            [Key],
            (keys, _) => Task.FromResult<IReadOnlyDictionary<string, string>>(keys.ToDictionary(k => k, _ => "fresh"))).AsTask();
        HeldCall read = await cluster.ViewA.NextHeldAsync();
        cluster.ViewA.HoldReads = null;

        await cluster.InvalidateAsync(kind, Key);
        read.Release();
        await batch.WaitAsync(Guard);

        Assert.That(
            await cluster.A.GetOrLoadAsync(Key, Loads("fresh")),
            Is.EqualTo(Cluster.Expected(kind, "fresh")),
            $"A batch filled L1 with what an L2 read that started before {kind} brought back.");
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task TheLockOwnersValue_ReadAfterTheInvalidationStarted_IsNotServedToLaterCallers(Invalidation kind)
    {
        using var cluster = new Cluster(lockOnA: true);
        TestLoadLock loadLock = cluster.Lock;
        loadLock.HoldElsewhere(); // another node is loading the key

        var first = cluster.A.GetOrLoadAsync(Key, Loads("fresh")).AsTask();
        await TestCaches.Until(() => loadLock.Waiting == 1 || first.IsCompleted, "A waits for the other node's load");
        Assert.That(first.IsCompleted, Is.False, "A did not wait for the node holding the lock.");

        await cluster.Writer.SetAsync(Key, "v1"); // the owner's result lands in L2
        cluster.ViewA.HoldReads = ControlledDistributedCache.IsEntry; // the only entry: the key's
        loadLock.ReleaseElsewhere();
        HeldCall read = await cluster.ViewA.NextHeldAsync(); // A reads the owner's value
        cluster.ViewA.HoldReads = null;

        await cluster.InvalidateAsync(kind, Key);
        read.Release();
        await first.WaitAsync(Guard);

        Assert.That(
            await cluster.A.GetOrLoadAsync(Key, Loads("fresh")),
            Is.EqualTo(Cluster.Expected(kind, "fresh")),
            $"The lock owner's value, read before {kind} completed, was served to a caller that started after it.");
    }

    [TestCase(Invalidation.Set)]
    [TestCase(Invalidation.Remove)]
    [TestCase(Invalidation.RemoveAll)]
    [TestCase(Invalidation.Backplane)]
    public async Task EarlyRefreshsProbeOfL2_ThatAnswersAfterTheInvalidation_IsNotServedToLaterCallers(Invalidation kind)
    {
        using var cluster = new Cluster(o => { o.DefaultExpiration = TimeSpan.FromSeconds(100); o.EagerRefreshThreshold = 0.5; });
        Assert.That(await cluster.A.GetOrLoadAsync(Key, Loads("v0")), Is.EqualTo("v0"));
        cluster.Time.Advance(TimeSpan.FromSeconds(1));
        await cluster.Writer.SetAsync(Key, "v1"); // newer than A's copy: the refresh will find it in L2
        cluster.Time.Advance(TimeSpan.FromSeconds(50)); // past A's refresh point

        cluster.ViewA.HoldReads = ControlledDistributedCache.IsEntry; // the only entry: the key's
        Assert.That(await cluster.A.GetOrLoadAsync(Key, Loads("fresh")), Is.EqualTo("v0"), "The hit that starts the refresh gets the current value.");
        HeldCall read = await cluster.ViewA.NextHeldAsync();
        cluster.ViewA.HoldReads = null;

        await cluster.InvalidateAsync(kind, Key);
        read.Release();
        await TestCaches.Until(() => cluster.A.BackgroundCount == 0, "the refresh finishes");

        Assert.That(
            await cluster.A.GetOrLoadAsync(Key, Loads("fresh")),
            Is.EqualTo(Cluster.Expected(kind, "fresh")),
            $"An early refresh's L2 read that started before {kind} filled L1 after it.");
    }
}
