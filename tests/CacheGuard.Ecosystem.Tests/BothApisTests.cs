using CacheGuard.Ecosystem.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Ecosystem.Tests;

/// <summary>
/// The same scenarios through <see cref="ICoalescingCache"/> and through Microsoft's <c>HybridCache</c> registered
/// with <c>AsHybridCache()</c>: the adapter must not change what the cache does.
/// </summary>
[TestFixture(Api.Core)]
[TestFixture(Api.Hybrid)]
public class BothApisTests(Api api)
{
    private FakeDistributedCache _l2 = null!;
    private ServiceProvider _provider = null!;
    private CacheApi _cache = null!;

    [SetUp]
    public void SetUp()
    {
        _l2 = new FakeDistributedCache();
        var services = new ServiceCollection();
        services.AddCoalescingCache(o => o.Name = "both-" + Guid.NewGuid().ToString("N")[..8]).WithDistributedCache(_l2).AsHybridCache();
        _provider = services.BuildServiceProvider();
        _cache = CacheApi.For(api, _provider);
    }

    [TearDown]
    public void TearDown() => _provider.Dispose();

    private static Func<CancellationToken, Task<string>> Counting(Ref<int> calls, string value) => _ =>
    {
        Interlocked.Increment(ref calls.Value);
        return Task.FromResult(value);
    };

    [Test]
    public async Task StampedeOnAColdKey_RunsTheFactoryOnce_AndEveryCallerGetsItsValue()
    {
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        int runs = 0;
        var calls = Enumerable.Range(0, 200)
            .Select(_ => _cache.GetOrCreateAsync("k", _ => { Interlocked.Increment(ref runs); return gate.Task; }).AsTask())
            .ToList();

        Assert.That(calls.Any(c => c.IsCompleted), Is.False);
        gate.SetResult("v");

        Assert.That(await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(10)), Has.All.EqualTo("v"));
        Assert.That(runs, Is.EqualTo(1));
        Assert.That(_l2.Gets, Is.EqualTo(1), "one L2 read for the whole stampede");
        Assert.That(_l2.Sets, Is.EqualTo(1));
    }

    [Test]
    public async Task SetThenGet_ReturnsTheSetValue_WithoutRunningTheFactory()
    {
        var calls = new Ref<int>();
        await _cache.SetAsync("k", "set");

        Assert.That(await _cache.GetOrCreateAsync("k", Counting(calls, "loaded")), Is.EqualTo("set"));
        Assert.That(calls.Value, Is.Zero);
        Assert.That(_l2.Sets, Is.EqualTo(1));
    }

    [Test]
    public async Task Remove_MakesTheNextGetRunTheFactoryAgain()
    {
        var calls = new Ref<int>();
        await _cache.GetOrCreateAsync("k", Counting(calls, "first"));
        await _cache.RemoveAsync("k");

        Assert.That(await _cache.GetOrCreateAsync("k", Counting(calls, "second")), Is.EqualTo("second"));
        Assert.That(calls.Value, Is.EqualTo(2));
        Assert.That(_l2.Sets, Is.EqualTo(3), "two loads stored, and the removal wrote a removal mark over the first (a miss for every reader)");
    }

    [Test]
    public async Task RemoveByTag_InvalidatesTaggedEntries_AndLeavesOthers()
    {
        var calls = new Ref<int>();
        await _cache.GetOrCreateAsync("a", Counting(calls, "a1"), tags: ["group"]);
        await _cache.GetOrCreateAsync("b", Counting(calls, "b1"), tags: ["other"]);

        await _cache.RemoveByTagAsync("group");

        Assert.That(await _cache.GetOrCreateAsync("a", Counting(calls, "a2"), tags: ["group"]), Is.EqualTo("a2"));
        Assert.That(await _cache.GetOrCreateAsync("b", Counting(calls, "b2"), tags: ["other"]), Is.EqualTo("b1"));
        Assert.That(calls.Value, Is.EqualTo(3));
    }

    [Test]
    public async Task AFactoryException_ReachesEveryCaller_AndIsNotCached()
    {
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = Enumerable.Range(0, 20).Select(_ => _cache.GetOrCreateAsync("k", _ => gate.Task).AsTask()).ToList();
        gate.SetException(new InvalidOperationException("boom"));

        foreach (Task<string> call in calls)
        {
            Assert.ThrowsAsync<InvalidOperationException>(async () => await call.WaitAsync(TimeSpan.FromSeconds(10)));
        }

        var retries = new Ref<int>();
        Assert.That(await _cache.GetOrCreateAsync("k", Counting(retries, "ok")), Is.EqualTo("ok"));
        Assert.That(retries.Value, Is.EqualTo(1));
    }

    [Test]
    public async Task ANullResult_IsCached_SoTheFactoryRunsOnce()
    {
        var calls = new Ref<int>();
        Func<CancellationToken, Task<string?>> missing = _ => { Interlocked.Increment(ref calls.Value); return Task.FromResult<string?>(null); };

        Assert.That(await _cache.GetOrCreateAsync("k", missing), Is.Null);
        Assert.That(await _cache.GetOrCreateAsync("k", missing), Is.Null);
        Assert.That(calls.Value, Is.EqualTo(1));
    }

    [Test]
    public async Task DisableUnderlyingData_OnAMiss_ReturnsDefault_RunsNoFactory_AndCachesNothing()
    {
        var calls = new Ref<int>();

        Assert.That(await _cache.GetOrCreateAsync("k", Counting(calls, "x"), CacheEntryFlags.DisableUnderlyingData), Is.Null);
        Assert.That(calls.Value, Is.Zero);
        Assert.That(_l2.Sets, Is.Zero);

        Assert.That(await _cache.GetOrCreateAsync("k", Counting(calls, "loaded")), Is.EqualTo("loaded"));
        Assert.That(await _cache.GetOrCreateAsync("k", Counting(calls, "x"), CacheEntryFlags.DisableUnderlyingData), Is.EqualTo("loaded"));
        Assert.That(calls.Value, Is.EqualTo(1));
    }

    [Test]
    public async Task DisableLocalCache_ReadsL2EveryTime_AndNeverRunsTheFactoryAgain()
    {
        var calls = new Ref<int>();
        await _cache.GetOrCreateAsync("k", Counting(calls, "v"));
        int gets = _l2.Gets;

        Assert.That(await _cache.GetOrCreateAsync("k", Counting(calls, "x"), CacheEntryFlags.DisableLocalCache), Is.EqualTo("v"));
        Assert.That(await _cache.GetOrCreateAsync("k", Counting(calls, "x"), CacheEntryFlags.DisableLocalCache), Is.EqualTo("v"));

        Assert.That(_l2.Gets, Is.EqualTo(gets + 2));
        Assert.That(calls.Value, Is.EqualTo(1));
    }

    [Test]
    public async Task DisableLocalCacheWrite_LeavesL1Empty_SoTheNextReadGoesToL2()
    {
        var calls = new Ref<int>();
        await _cache.GetOrCreateAsync("k", Counting(calls, "v"), CacheEntryFlags.DisableLocalCacheWrite);
        int gets = _l2.Gets;

        Assert.That(await _cache.GetOrCreateAsync("k", Counting(calls, "x")), Is.EqualTo("v"));
        Assert.That(_l2.Gets, Is.EqualTo(gets + 1));
        Assert.That(calls.Value, Is.EqualTo(1));
    }

    [Test]
    public async Task DisableDistributedCache_NeverTouchesL2_ButStillCachesInL1()
    {
        var calls = new Ref<int>();
        await _cache.GetOrCreateAsync("k", Counting(calls, "v"), CacheEntryFlags.DisableDistributedCache);
        Assert.That(await _cache.GetOrCreateAsync("k", Counting(calls, "x"), CacheEntryFlags.DisableDistributedCache), Is.EqualTo("v"));

        Assert.That(_l2.Gets + _l2.Sets, Is.Zero);
        Assert.That(calls.Value, Is.EqualTo(1));
    }

    [Test]
    public async Task DisableDistributedCacheWrite_ReadsL2_ButDoesNotWriteIt()
    {
        var calls = new Ref<int>();
        await _cache.GetOrCreateAsync("k", Counting(calls, "v"), CacheEntryFlags.DisableDistributedCacheWrite);

        Assert.That(_l2.Gets, Is.EqualTo(1));
        Assert.That(_l2.Sets, Is.Zero);
    }

    [Test]
    public async Task OneCallerCancelling_DoesNotCancelTheSharedLoad()
    {
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        CancellationToken factoryToken = default;
        using var cts = new CancellationTokenSource();
        Task<string> cancelled = _cache.GetOrCreateAsync("k", ct => { factoryToken = ct; return gate.Task; }, cancellationToken: cts.Token).AsTask();
        Task<string> patient = _cache.GetOrCreateAsync("k", _ => Task.FromResult("never")).AsTask();

        await cts.CancelAsync();
        Assert.ThrowsAsync(Is.InstanceOf<OperationCanceledException>(), async () => await cancelled.WaitAsync(TimeSpan.FromSeconds(10)));
        gate.SetResult("v");

        Assert.That(await patient.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo("v"));
        Assert.That(factoryToken.IsCancellationRequested, Is.False);
    }

    /// <summary>A counter a lambda can increment.</summary>
    private sealed class Ref<T>
    {
        public T Value = default!;
    }
}
