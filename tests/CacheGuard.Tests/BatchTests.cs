using System.Collections.Concurrent;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class BatchTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    /// <summary>An L2 that reads many keys in one call, and counts those calls.</summary>
    private sealed class BatchingL2(FakeTimeProvider time) : IBatchDistributedCache, Microsoft.Extensions.Caching.Distributed.IDistributedCache
    {
        private readonly FakeDistributedCache _inner = new(time);
        private int _batchReads;

        public FakeDistributedCache Inner => _inner;

        public int BatchReads => Volatile.Read(ref _batchReads);

        public ValueTask<byte[]?[]> GetManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _batchReads);
            return ValueTask.FromResult(keys.Select(_inner.Raw).ToArray());
        }

        public byte[]? Get(string key) => _inner.Get(key);

        public Task<byte[]?> GetAsync(string key, CancellationToken token = default) => _inner.GetAsync(key, token);

        public void Refresh(string key) => _inner.Refresh(key);

        public Task RefreshAsync(string key, CancellationToken token = default) => _inner.RefreshAsync(key, token);

        public void Remove(string key) => _inner.Remove(key);

        public Task RemoveAsync(string key, CancellationToken token = default) => _inner.RemoveAsync(key, token);

        public void Set(string key, byte[] value, Microsoft.Extensions.Caching.Distributed.DistributedCacheEntryOptions options) => _inner.Set(key, value, options);

        public Task SetAsync(string key, byte[] value, Microsoft.Extensions.Caching.Distributed.DistributedCacheEntryOptions options, CancellationToken token = default) => _inner.SetAsync(key, value, options, token);
    }

    private static Task<IReadOnlyDictionary<string, string>> Echo(IReadOnlyList<string> keys, CancellationToken _) =>
        Task.FromResult<IReadOnlyDictionary<string, string>>(keys.ToDictionary(k => k, k => "v:" + k));

    [Test]
    public async Task HitsFromL1_ThenOneBatchedL2Read_ThenOneLoaderCallForWhatIsStillMissing()
    {
        var time = new FakeTimeProvider();
        var l2 = new BatchingL2(time);
        using (var other = TestCaches.Create(l2: l2, time: time))
        {
            await other.SetAsync("in-l2", "from-l2");
        }

        using var cache = TestCaches.Create(l2: l2, time: time);
        await cache.SetAsync("in-l1", "from-l1");
        var asked = new List<IReadOnlyList<string>>();

        var result = await cache.GetOrLoadManyAsync(["in-l1", "in-l2", "cold-1", "cold-2", "cold-1"], (keys, ct) => { asked.Add(keys); return Echo(keys, ct); });

        Assert.That(result, Is.EquivalentTo(new Dictionary<string, string> { ["in-l1"] = "from-l1", ["in-l2"] = "from-l2", ["cold-1"] = "v:cold-1", ["cold-2"] = "v:cold-2" }));
        Assert.That(asked, Has.Count.EqualTo(1));
        Assert.That(asked[0], Is.EquivalentTo(new[] { "cold-1", "cold-2" }));
        Assert.That(l2.BatchReads, Is.EqualTo(1));
        Assert.That(l2.Inner.Gets, Is.Zero, "No single reads.");
        Assert.That(await cache.GetOrLoadAsync("cold-2", _ => Task.FromResult("single")), Is.EqualTo("v:cold-2"), "Loaded values are cached.");
    }

    [Test]
    public async Task TenThousandKeys_OneLoaderCall_OneBatchedL2Read()
    {
        var time = new FakeTimeProvider();
        var l2 = new BatchingL2(time);
        using var cache = TestCaches.Create(l2: l2, time: time);
        var keys = Enumerable.Range(0, 10_000).Select(i => $"k{i}").ToArray();
        int calls = 0;

        var result = await cache.GetOrLoadManyAsync(keys, (missing, ct) => { calls++; return Echo(missing, ct); });

        Assert.That(result, Has.Count.EqualTo(10_000));
        Assert.That(calls, Is.EqualTo(1));
        Assert.That(l2.BatchReads, Is.EqualTo(1));
        Assert.That(cache.InFlightCount, Is.Zero);
    }

    [Test]
    public async Task KeysTheLoaderLeavesOut_AreNotFound_AndNegativeCached()
    {
        using var cache = TestCaches.Create();
        var asked = new List<string>();
        Task<IReadOnlyDictionary<string, string?>> OnlyEven(IReadOnlyList<string> keys, CancellationToken _)
        {
            asked.AddRange(keys);
            return Task.FromResult<IReadOnlyDictionary<string, string?>>(keys.Where(k => k.EndsWith('0') || k.EndsWith('2')).ToDictionary(k => k, k => (string?)k));
        }

        var first = await cache.GetOrLoadManyAsync(["k0", "k1", "k2", "k3"], OnlyEven);
        var second = await cache.GetOrLoadManyAsync(["k0", "k1", "k2", "k3"], OnlyEven);

        Assert.That(first.Keys, Is.EquivalentTo(new[] { "k0", "k2" }));
        Assert.That(second.Keys, Is.EquivalentTo(new[] { "k0", "k2" }));
        Assert.That(asked, Has.Count.EqualTo(4), "The second batch asked the loader for nothing: absence was cached.");
        Assert.That((await cache.TryGetAsync<string?>("k1")).Status, Is.EqualTo(CacheLookupStatus.CachedNotFound));
    }

    [Test]
    public async Task AKeyASingleCallerIsLoading_IsAwaitedByTheBatch_NotLoadedAgain()
    {
        using var cache = TestCaches.Create();
        var single = new TestCaches.GatedLoader<string>();
        var loadingA = cache.GetOrLoadAsync("a", single.Load).AsTask();
        var asked = new List<string>();

        var batch = cache.GetOrLoadManyAsync(["a", "b"], (keys, ct) => { asked.AddRange(keys); return Echo(keys, ct); }).AsTask();
        Assert.That(asked, Is.EqualTo(new[] { "b" }));
        Assert.That(batch.IsCompleted, Is.False, "The batch waits for a.");
        single.Gate.SetResult("single-a");

        var result = await batch.WaitAsync(Guard);
        Assert.That(result["a"], Is.EqualTo("single-a"));
        Assert.That(await loadingA, Is.EqualTo("single-a"));
    }

    [Test]
    public async Task ASingleCallerForAKeyTheBatchIsLoading_WaitsForTheBatch()
    {
        using var cache = TestCaches.Create();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int batchCalls = 0;
        var batch = cache.GetOrLoadManyAsync(["a", "b"], async (keys, ct) =>
        {
            Interlocked.Increment(ref batchCalls);
            await gate.Task;
            return (IReadOnlyDictionary<string, string>)keys.ToDictionary(k => k, k => "batch:" + k);
        }).AsTask();

        int singleCalls = 0;
        var single = cache.GetOrLoadAsync("b", _ => { singleCalls++; return Task.FromResult("single"); }).AsTask();
        gate.SetResult();

        Assert.That(await single.WaitAsync(Guard), Is.EqualTo("batch:b"));
        Assert.That(singleCalls, Is.Zero);
        Assert.That((await batch.WaitAsync(Guard))["a"], Is.EqualTo("batch:a"));
        Assert.That(batchCalls, Is.EqualTo(1));
    }

    [Test]
    public async Task ALoaderFailure_ReachesEveryCallerWaitingOnAnyOfItsKeys()
    {
        using var cache = TestCaches.Create();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failure = new InvalidDataException("batch source down");
        var batch = cache.GetOrLoadManyAsync<string>(["a", "b"], async (keys, ct) =>
        {
            await gate.Task;
            throw failure;
        }).AsTask();
        var singleA = cache.GetOrLoadAsync("a", _ => Task.FromResult("x")).AsTask();
        var otherBatch = cache.GetOrLoadManyAsync(["b", "c"], Echo).AsTask();
        gate.SetResult();

        Assert.That(Assert.ThrowsAsync<InvalidDataException>(async () => await batch.WaitAsync(Guard)), Is.SameAs(failure));
        Assert.That(Assert.ThrowsAsync<InvalidDataException>(async () => await singleA.WaitAsync(Guard)), Is.SameAs(failure));
        Assert.That(Assert.ThrowsAsync<InvalidDataException>(async () => await otherBatch.WaitAsync(Guard)), Is.SameAs(failure));
        Assert.That(cache.InFlightCount, Is.Zero);
        Assert.That((await cache.GetOrLoadManyAsync(["a", "b"], Echo)).Count, Is.EqualTo(2), "Not cached: the next batch loads again.");
    }

    [Test]
    [Repeat(5)]
    public async Task OverlappingBatchesAndSingles_UnderContention_NeverLoadAKeyTwiceAtOnce()
    {
        using var cache = TestCaches.Create();
        var loading = new ConcurrentDictionary<string, int>();
        var loads = new ConcurrentDictionary<string, int>();
        int overlaps = 0;

        async Task<IReadOnlyDictionary<string, int>> Load(IReadOnlyList<string> keys, CancellationToken _)
        {
            foreach (string key in keys)
            {
                if (loading.AddOrUpdate(key, 1, (_, n) => n + 1) > 1)
                {
                    Interlocked.Increment(ref overlaps);
                }

                loads.AddOrUpdate(key, 1, (_, n) => n + 1);
            }

            await Task.Yield();
            foreach (string key in keys)
            {
                loading.AddOrUpdate(key, 0, (_, n) => n - 1);
            }

            return keys.ToDictionary(k => k, k => int.Parse(k[1..], System.Globalization.CultureInfo.InvariantCulture));
        }

        var random = new Random(7);
        var work = new List<Task>();
        for (int i = 0; i < 200; i++)
        {
            int start = random.Next(0, 400);
            string[] keys = Enumerable.Range(start, random.Next(1, 50)).Select(n => $"k{n}").ToArray();
            work.Add(Task.Run(async () =>
            {
                var result = await cache.GetOrLoadManyAsync(keys, Load);
                Assert.That(result, Has.Count.EqualTo(keys.Length));
            }));
            string single = $"k{random.Next(0, 450)}";
            work.Add(Task.Run(async () =>
            {
                int value = await cache.GetOrLoadAsync(single, async ct => (await Load([single], ct))[single]);
                Assert.That(value, Is.EqualTo(int.Parse(single[1..], System.Globalization.CultureInfo.InvariantCulture)));
            }));
        }

        await Task.WhenAll(work).WaitAsync(Guard);
        Assert.That(overlaps, Is.Zero, "A key was in two loads at once.");
        Assert.That(loads.Values, Has.All.EqualTo(1), "No key was loaded twice (nothing expired).");
    }

    [Test]
    public void BadInput_Throws()
    {
        using var cache = TestCaches.Create();

        Assert.Throws<ArgumentNullException>(() => _ = cache.GetOrLoadManyAsync<string>(null!, Echo));
        Assert.Throws<ArgumentNullException>(() => _ = cache.GetOrLoadManyAsync<string>(["a"], null!));
        Assert.Throws<ArgumentException>(() => _ = cache.GetOrLoadManyAsync<string>(["a", " "], Echo));
    }
}
