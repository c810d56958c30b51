using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (i): <c>GetOrLoadManyAsync</c> follows the rules of <c>GetOrLoadAsync</c>: its callers wait no
/// longer than <see cref="CacheEntryOptions.LoaderHardTimeout"/>; fail-safe hands out each key's stale value when the
/// loader fails or times out; <see cref="CacheEntryFlags.DisableUnderlyingData"/> means no loader call; and with the
/// distributed load lock on, a batch takes the lock for the keys it loads and waits for another node's. A single caller
/// that joins a key a batch is loading still gets its own hard timeout.
/// </summary>
public class BatchLoads_FollowTheRulesOfSingleLoads
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Hard = TimeSpan.FromSeconds(3);
    private static readonly string[] Keys = ["a", "b"];

    private static Dictionary<string, string> Values(IEnumerable<string> keys, string prefix) => keys.ToDictionary(k => k, k => $"{prefix}-{k}");

    /// <summary>A batch loader the test releases, counting its calls.</summary>
    private sealed class GatedBatchLoader
    {
        private int _calls;

        public TaskCompletionSource<IReadOnlyDictionary<string, string>> Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Calls => Volatile.Read(ref _calls);

        public Action? OnCall { get; init; }

        public Task<IReadOnlyDictionary<string, string>> Load(IReadOnlyList<string> keys, CancellationToken _)
        {
            Interlocked.Increment(ref _calls);
            OnCall?.Invoke();
            return Gate.Task;
        }
    }

    [Test]
    public async Task ABatchCaller_WaitsNoLongerThanItsHardTimeout()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(time: time);
        var loader = new GatedBatchLoader();
        int armed = time.ArmedTimers;
        var batch = cache.GetOrLoadManyAsync<string>(Keys, loader.Load, new CacheEntryOptions { LoaderHardTimeout = Hard }).AsTask();
        await TestCaches.Until(() => loader.Calls == 1 && time.ArmedTimers > armed, "the batch loader runs under the hard timeout");

        time.Advance(Hard);
        await Expect.ThrowsAsync<TimeoutException>(batch, "The batch caller's hard timeout did not end its wait.");

        loader.Gate.SetResult(Values(Keys, "late"));
        await TestCaches.Until(() => cache.BackgroundCount == 0, "the batch finishes in the background");
        Assert.That((await cache.TryGetAsync<string>("a")).Value, Is.EqualTo("late-a"), "Like a single load, the timed-out batch still fills the cache.");
    }

    [Test]
    public async Task FailSafe_HandsOutEachKeysStaleValue_WhenTheBatchLoaderFails()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.FailSafe = true; o.JitterRatio = 0; o.DefaultExpiration = TimeSpan.FromMinutes(1); }, time: time);
        await cache.GetOrLoadManyAsync<string>(Keys, (keys, _) => Task.FromResult<IReadOnlyDictionary<string, string>>(Values(keys, "old")));
        time.Advance(TimeSpan.FromMinutes(1));

        IReadOnlyDictionary<string, string> result = await cache.GetOrLoadManyAsync<string>(Keys, (_, _) => Task.FromException<IReadOnlyDictionary<string, string>>(new SourceDownException()))
            .AsTask().WaitAsync(Guard);

        Assert.That(result, Is.EquivalentTo(Values(Keys, "old")));
    }

    [Test]
    public async Task FailSafe_HandsOutEachKeysStaleValue_WhenTheBatchLoaderTimesOut()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.FailSafe = true; o.JitterRatio = 0; o.DefaultExpiration = TimeSpan.FromMinutes(1); }, time: time);
        await cache.GetOrLoadManyAsync<string>(Keys, (keys, _) => Task.FromResult<IReadOnlyDictionary<string, string>>(Values(keys, "old")));
        time.Advance(TimeSpan.FromMinutes(1));

        var loader = new GatedBatchLoader();
        int armed = time.ArmedTimers;
        var batch = cache.GetOrLoadManyAsync<string>(Keys, loader.Load, new CacheEntryOptions { LoaderHardTimeout = Hard }).AsTask();
        await TestCaches.Until(() => loader.Calls == 1 && time.ArmedTimers > armed, "the batch loader runs under the hard timeout");
        time.Advance(Hard);
        await TestCaches.Until(() => batch.IsCompleted, "the batch caller's hard timeout ends its wait");

        Assert.That(await batch, Is.EquivalentTo(Values(Keys, "old")));
        loader.Gate.SetResult(Values(Keys, "late"));
    }

    [Test]
    public async Task DisableUnderlyingData_CallsNoBatchLoader_AndReturnsOnlyHits()
    {
        using var cache = TestCaches.Create();
        await cache.SetAsync("a", "cached-a");
        int calls = 0;

        IReadOnlyDictionary<string, string> result = await cache.GetOrLoadManyAsync<string>(
            Keys,
            (keys, _) =>
            {
                Interlocked.Increment(ref calls);
                return Task.FromResult<IReadOnlyDictionary<string, string>>(Values(keys, "loaded"));
            },
            new CacheEntryOptions { Flags = CacheEntryFlags.DisableUnderlyingData });

        Assert.That(calls, Is.Zero, "A batch with DisableUnderlyingData called its loader.");
        Assert.That(result, Is.EquivalentTo(new Dictionary<string, string> { ["a"] = "cached-a" }));
        Assert.That(cache.IsInL1("b"), Is.False, "Nothing is cached for a key the batch did not load.");
    }

    [Test]
    public async Task WithTheLoadLockOn_ABatchHoldsTheLockOfEveryKeyItLoads()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var loadLock = new TestLoadLock(time);
        using var cache = TestNodes.Create(time, l2, loadLock: loadLock);
        int heldDuringLoad = -1;
        var loader = new GatedBatchLoader { OnCall = () => heldDuringLoad = loadLock.Held };

        var batch = cache.GetOrLoadManyAsync<string>(Keys, loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "the batch loader runs");
        Assert.That(heldDuringLoad, Is.EqualTo(Keys.Length), "The batch loaded keys without holding their distributed locks.");

        loader.Gate.SetResult(Values(Keys, "loaded"));
        Assert.That(await batch.WaitAsync(Guard), Is.EquivalentTo(Values(Keys, "loaded")));
        Assert.That(loadLock.Held, Is.Zero, "Every lock is released once the values are stored.");
    }

    [Test]
    public async Task WithTheLoadLockOn_ABatchWaitsForAnotherNodesLoad_AndUsesItsValues()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var loadLock = new TestLoadLock(time);
        using var cache = TestNodes.Create(time, l2, loadLock: loadLock);
        using var owner = TestNodes.Create(time, l2);
        loadLock.HoldElsewhere();
        int calls = 0;

        var batch = cache.GetOrLoadManyAsync<string>(Keys, (keys, _) =>
        {
            Interlocked.Increment(ref calls);
            return Task.FromResult<IReadOnlyDictionary<string, string>>(Values(keys, "loaded here"));
        }).AsTask();
        await TestCaches.Until(() => loadLock.Waiting > 0 || calls > 0 || batch.IsCompleted, "the batch waits for the other node, or loads");
        Assert.That(calls, Is.Zero, "The batch loaded keys another node was loading under the lock.");

        foreach (string key in Keys)
        {
            await owner.SetAsync(key, $"owner-{key}"); // the other node's results reach L2
        }

        loadLock.ReleaseElsewhere();
        Assert.That(await batch.WaitAsync(Guard), Is.EquivalentTo(Values(Keys, "owner")));
        Assert.That(calls, Is.Zero);
    }

    [Test]
    public async Task ASingleCallerJoiningAKeyABatchIsLoading_StillGetsItsOwnHardTimeout()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(time: time);
        var loader = new GatedBatchLoader();
        var batch = cache.GetOrLoadManyAsync<string>(Keys, loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "the batch loads, without a hard timeout");

        int armed = time.ArmedTimers;
        var single = cache.GetOrLoadAsync("a", _ => Task.FromResult("single"), new CacheEntryOptions { LoaderHardTimeout = Hard }).AsTask();
        await TestCaches.Until(() => single.IsCompleted || time.ArmedTimers > armed, "the single caller waits under its own hard timeout");
        time.Advance(Hard);

        await Expect.ThrowsAsync<TimeoutException>(single, "The single caller that joined the batch's key was not bounded by its hard timeout.");
        loader.Gate.SetResult(Values(Keys, "batch"));
        Assert.That(await batch.WaitAsync(Guard), Is.EquivalentTo(Values(Keys, "batch")));
    }
}
