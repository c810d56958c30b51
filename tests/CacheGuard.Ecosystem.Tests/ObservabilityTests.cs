using System.Diagnostics;
using System.Diagnostics.Metrics;
using CacheGuard.Ecosystem.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Ecosystem.Tests;

/// <summary>
/// Metrics, traces and logs, read the way an exporter reads them: a <see cref="MeterListener"/> on the
/// <c>CacheGuard</c> meter, an <see cref="ActivityListener"/> on the <c>CacheGuard</c> source, and an
/// <see cref="ILoggerProvider"/>. Each test uses its own cache name, so captures never see another test's cache.
/// </summary>
public class ObservabilityTests
{
    private const int Callers = 100;

    private static string UniqueName() => "obs-" + Guid.NewGuid().ToString("N")[..8];

    private static (ServiceProvider Provider, ICoalescingCache Cache) Build(string name, FakeDistributedCache? l2 = null, Action<CoalescingCacheOptions>? configure = null, Action<IServiceCollection>? services = null)
    {
        var collection = new ServiceCollection();
        services?.Invoke(collection);
        ICoalescingCacheBuilder builder = collection.AddCoalescingCache(o =>
        {
            o.Name = name;
            configure?.Invoke(o);
        });
        if (l2 is not null)
        {
            builder.WithDistributedCache(l2);
        }

        ServiceProvider provider = collection.BuildServiceProvider();
        return (provider, provider.GetRequiredService<ICoalescingCache>());
    }

    /// <summary>Starts <see cref="Callers"/> calls for one cold key while the loader is held, without awaiting them.</summary>
    private static List<Task<string>> StartStampede(ICoalescingCache cache, string key, TaskCompletionSource<string> gate, Action onLoad)
    {
        var calls = new List<Task<string>>(Callers);
        for (int i = 0; i < Callers; i++)
        {
            calls.Add(cache.GetOrLoadAsync(key, _ =>
            {
                onLoad();
                return gate.Task;
            }).AsTask());
        }

        return calls;
    }

    [Test]
    public async Task ScriptedStampede_CountsOneLoad_AndEveryJoinedCaller_InMetricsAndTraces()
    {
        string name = UniqueName();
        using var meters = new MeterCapture(name);
        using var traces = new ActivityCapture(name);
        var l2 = new FakeDistributedCache();
        var (provider, cache) = Build(name, l2);
        await using var _ = provider;
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        int loaderRuns = 0;

        List<Task<string>> calls = StartStampede(cache, "user:1", gate, () => Interlocked.Increment(ref loaderRuns));

        // Every caller has either started the load or joined it by now: joining is synchronous.
        Assert.That(meters["cacheguard.cache.misses"], Is.EqualTo(Callers), meters.Dump());
        Assert.That(meters["cacheguard.cache.coalesced"], Is.EqualTo(Callers - 1), meters.Dump());
        Assert.That(calls.Any(c => c.IsCompleted), Is.False);

        gate.SetResult("Ada");
        string[] results = await Task.WhenAll(calls).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Multiple(() =>
        {
            Assert.That(results, Has.All.EqualTo("Ada"));
            Assert.That(loaderRuns, Is.EqualTo(1));
            Assert.That(meters["cacheguard.cache.loads"], Is.EqualTo(1), meters.Dump());
            Assert.That(meters["cacheguard.cache.load.duration"], Is.EqualTo(1), meters.Dump());
            Assert.That(meters.LoadDurations, Has.All.GreaterThanOrEqualTo(0.0));
            Assert.That(meters["cacheguard.cache.hits"], Is.Zero, meters.Dump());
            Assert.That(meters["cacheguard.cache.loader.errors"], Is.Zero);
            Assert.That(meters["cacheguard.cache.l2.errors"], Is.Zero);

            Assert.That(traces.Count("cacheguard.load"), Is.EqualTo(1));
            Assert.That(traces.Count("cacheguard.l2.read"), Is.EqualTo(1));
            Assert.That(traces.Count("cacheguard.l2.write"), Is.EqualTo(1));
            Assert.That(traces.Stopped.Select(a => a.GetTagItem("cache.key")), Has.All.Null, "keys stay out of traces unless IncludeKeysInTelemetry is on");
            Assert.That(traces.Stopped.Select(a => a.Status), Has.All.Not.EqualTo(ActivityStatusCode.Error));
        });

        // After the stampede: L1 hits, tagged l1, and no further activity (a hit is not traced).
        for (int i = 0; i < 10; i++)
        {
            Assert.That(await cache.GetOrLoadAsync("user:1", _ => Task.FromResult("other")), Is.EqualTo("Ada"));
        }

        Assert.That(meters["cacheguard.cache.hits|cache.level=l1"], Is.EqualTo(10), meters.Dump());
        Assert.That(meters["cacheguard.cache.misses"], Is.EqualTo(Callers));
        Assert.That(traces.Stopped, Has.Count.EqualTo(3));
    }

    [Test]
    public async Task AnotherNodeReadingTheSameL2_CountsAnL2Hit_AndNoLoad()
    {
        string name = UniqueName();
        using var meters = new MeterCapture(name);
        using var traces = new ActivityCapture(name);
        var l2 = new FakeDistributedCache();
        var (first, firstCache) = Build(name, l2);
        var (second, secondCache) = Build(name, l2);
        await using var _ = first;
        await using var __ = second;

        await firstCache.GetOrLoadAsync("k", _ => Task.FromResult(42));
        int value = await secondCache.GetOrLoadAsync("k", _ => Task.FromResult(-1));

        Assert.Multiple(() =>
        {
            Assert.That(value, Is.EqualTo(42));
            Assert.That(meters["cacheguard.cache.hits|cache.level=l2"], Is.EqualTo(1), meters.Dump());
            Assert.That(meters["cacheguard.cache.loads"], Is.EqualTo(1), meters.Dump());
            Assert.That(traces.Count("cacheguard.l2.read"), Is.EqualTo(3), "each node's read of the entry, and the second node's first read of the \"*\" stamp (at most once per TagCheckInterval)");
            Assert.That(traces.Count("cacheguard.load"), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task AFailingLoaderInAStampede_IsOneLoaderError_AndAnErrorActivity()
    {
        string name = UniqueName();
        using var meters = new MeterCapture(name);
        using var traces = new ActivityCapture(name);
        var (provider, cache) = Build(name);
        await using var _ = provider;
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);

        List<Task<string>> calls = StartStampede(cache, "k", gate, static () => { });
        gate.SetException(new TimeoutException("database timeout"));

        foreach (Task<string> call in calls)
        {
            Assert.ThrowsAsync<TimeoutException>(async () => await call.WaitAsync(TimeSpan.FromSeconds(10)));
        }

        Activity load = traces.Stopped.Single(a => a.OperationName == "cacheguard.load");
        Assert.Multiple(() =>
        {
            Assert.That(meters["cacheguard.cache.loader.errors"], Is.EqualTo(1), meters.Dump());
            Assert.That(meters["cacheguard.cache.coalesced"], Is.EqualTo(Callers - 1));
            Assert.That(meters["cacheguard.cache.loads"], Is.Zero, "loads counts loads that produced a value");
            Assert.That(load.Status, Is.EqualTo(ActivityStatusCode.Error));
            Assert.That(load.GetTagItem("error.type"), Is.EqualTo(typeof(TimeoutException).FullName));
        });
    }

    [Test]
    public async Task AFailingL2_IsCountedByOperationAndErrorType_TracedAsErrors_AndLoggedWithStableEventIds()
    {
        string name = UniqueName();
        using var meters = new MeterCapture(name);
        using var traces = new ActivityCapture(name);
        var logs = new LogCapture();
        var l2 = new FakeDistributedCache { Fail = true };
        var (provider, cache) = Build(name, l2, services: s => s.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace)));
        await using var _ = provider;

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult(7)), Is.EqualTo(7));
        await cache.RemoveAsync("k");

        Assert.Multiple(() =>
        {
            Assert.That(meters["cacheguard.cache.l2.errors|cache.operation=read"], Is.EqualTo(1), meters.Dump());
            Assert.That(meters["cacheguard.cache.l2.errors|cache.operation=write"], Is.EqualTo(1), meters.Dump());
            Assert.That(meters["cacheguard.cache.l2.errors|cache.operation=remove"], Is.EqualTo(1), meters.Dump());
            Assert.That(meters["cacheguard.cache.l2.errors|error.type=exception"], Is.EqualTo(3), meters.Dump());
            Assert.That(traces.Stopped.Where(a => a.OperationName.StartsWith("cacheguard.l2.", StringComparison.Ordinal)).Select(a => a.Status).ToArray(), Has.Length.EqualTo(3).And.All.EqualTo(ActivityStatusCode.Error));

            LogCapture.LogEntry[] mine = [.. logs.Entries.Where(e => e.Category == "CacheGuard")];
            Assert.That(mine.Select(e => (e.EventId.Id, e.EventId.Name)), Is.EquivalentTo(new[] { (19, "L2Failing"), (1, "L2ReadFailed"), (3, "L2WriteFailed"), (6, "L2RemoveFailed") }));
            Assert.That(mine.Where(e => e.EventId.Id == 19), Has.All.Matches<LogCapture.LogEntry>(e => e.Level == LogLevel.Warning), "one warning when L2 starts failing");
            Assert.That(mine.Where(e => e.EventId.Id != 19), Has.All.Matches<LogCapture.LogEntry>(e => e.Level == LogLevel.Debug && e.Exception is InvalidOperationException), "per-call detail at Debug level");
            Assert.That(mine, Has.All.Matches<LogCapture.LogEntry>(e => e.State.Any(p => p.Key == "CacheName" && (string?)p.Value == name)), "structured: the cache name is a field, not only text");
        });
    }

    [Test]
    public async Task AHangingL2_IsCountedAsATimeout()
    {
        string name = UniqueName();
        using var meters = new MeterCapture(name);
        var time = new FakeTimeProvider();
        var l2 = new HangingDistributedCache();
        var collection = new ServiceCollection();
        collection.AddSingleton<TimeProvider>(time);
        collection.AddCoalescingCache(o => { o.Name = name; o.DistributedCacheTimeout = TimeSpan.FromSeconds(1); }).WithDistributedCache(l2);
        await using ServiceProvider provider = collection.BuildServiceProvider();
        var cache = provider.GetRequiredService<ICoalescingCache>();

        ValueTask<int> call = cache.GetOrLoadAsync("k", _ => Task.FromResult(5));
        await l2.Called.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(call.IsCompleted, Is.False);
        time.Advance(TimeSpan.FromSeconds(1));
        await l2.SetCalled.Task.WaitAsync(TimeSpan.FromSeconds(10)); // the read gave up; the load ran and writes now
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.That(await call.AsTask().WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo(5));
        Assert.That(meters["cacheguard.cache.l2.errors|error.type=timeout"], Is.EqualTo(2), meters.Dump());
        Assert.That(meters["cacheguard.cache.l2.errors|cache.operation=read"], Is.EqualTo(1), meters.Dump());
    }

    [Test]
    public async Task IncludeKeysInTelemetry_PutsTheKeyOnEveryActivity()
    {
        string name = UniqueName();
        using var traces = new ActivityCapture(name);
        var (provider, cache) = Build(name, new FakeDistributedCache(), o => o.IncludeKeysInTelemetry = true);
        await using var _ = provider;

        await cache.GetOrLoadAsync("order:7", _ => Task.FromResult(1));

        Assert.That(traces.Stopped, Has.Count.EqualTo(3));
        Assert.That(traces.Stopped.Select(a => a.GetTagItem("cache.key")), Has.All.EqualTo("order:7"));
    }

    [Test]
    public async Task WithAnIMeterFactoryInTheContainer_TheMeterIsCreatedThroughIt()
    {
        string name = UniqueName();
        using var factory = new TestMeterFactory();
        using var meters = new MeterCapture(name, scope: factory);
        var (provider, cache) = Build(name, services: s => s.AddSingleton<IMeterFactory>(factory));
        await using var _ = provider;

        await cache.GetOrLoadAsync("k", _ => Task.FromResult(1));

        Assert.That(factory.Created.Select(m => m.Name), Has.Member("CacheGuard"));
        Assert.That(meters["cacheguard.cache.loads"], Is.EqualTo(1), "measured on the factory's meter");
    }

    [Test]
    public async Task EveryInstrument_HasTheDocumentedNameUnitAndKind_AndIsDescribedInTheObservabilityPage()
    {
        string name = UniqueName();
        using var meters = new MeterCapture(name);
        var (provider, cache) = Build(name);
        await using var _ = provider;
        await cache.GetOrLoadAsync("k", _ => Task.FromResult(1));

        var expected = new Dictionary<string, (string Unit, Type Kind)>
        {
            ["cacheguard.cache.hits"] = ("{request}", typeof(Counter<long>)),
            ["cacheguard.cache.misses"] = ("{request}", typeof(Counter<long>)),
            ["cacheguard.cache.loads"] = ("{load}", typeof(Counter<long>)),
            ["cacheguard.cache.coalesced"] = ("{request}", typeof(Counter<long>)),
            ["cacheguard.cache.load.duration"] = ("s", typeof(Histogram<double>)),
            ["cacheguard.cache.loader.errors"] = ("{error}", typeof(Counter<long>)),
            ["cacheguard.cache.l2.errors"] = ("{error}", typeof(Counter<long>)),
            ["cacheguard.cache.stale_served"] = ("{request}", typeof(Counter<long>)),
            ["cacheguard.cache.early_refreshes"] = ("{refresh}", typeof(Counter<long>)),
            ["cacheguard.cache.loader.timeouts"] = ("{timeout}", typeof(Counter<long>)),
            ["cacheguard.cache.l2.circuit_breaker.transitions"] = ("{transition}", typeof(Counter<long>)),
            ["cacheguard.cache.backplane.evictions"] = ("{eviction}", typeof(Counter<long>)),
        };

        string page = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot(), "docs", "observability.md"));
        Assert.Multiple(() =>
        {
            foreach ((string instrument, (string unit, Type kind)) in expected)
            {
                Assert.That(meters.Instruments.TryGetValue(instrument, out Instrument? seen), Is.True, instrument);
                Assert.That(seen?.Unit, Is.EqualTo(unit), instrument);
                Assert.That(seen?.GetType(), Is.EqualTo(kind), instrument);
            }

            foreach (string instrument in meters.Instruments.Keys)
            {
                Assert.That(page, Does.Contain($"`{instrument}`"), $"docs/observability.md does not describe {instrument}");
            }
        });
    }

    internal static string RepositoryRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CacheGuard.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("CacheGuard.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>An L2 whose reads and writes never complete, however they are cancelled.</summary>
    private sealed class HangingDistributedCache : Microsoft.Extensions.Caching.Distributed.IDistributedCache
    {
        public TaskCompletionSource Called { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource SetCalled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public byte[]? Get(string key) => throw new NotSupportedException();

        public Task<byte[]?> GetAsync(string key, CancellationToken token = default)
        {
            Called.TrySetResult();
            return new TaskCompletionSource<byte[]?>().Task;
        }

        public void Set(string key, byte[] value, Microsoft.Extensions.Caching.Distributed.DistributedCacheEntryOptions options) => throw new NotSupportedException();

        public Task SetAsync(string key, byte[] value, Microsoft.Extensions.Caching.Distributed.DistributedCacheEntryOptions options, CancellationToken token = default)
        {
            SetCalled.TrySetResult();
            return new TaskCompletionSource().Task;
        }

        public void Refresh(string key) => throw new NotSupportedException();

        public Task RefreshAsync(string key, CancellationToken token = default) => throw new NotSupportedException();

        public void Remove(string key) => throw new NotSupportedException();

        public Task RemoveAsync(string key, CancellationToken token = default) => throw new NotSupportedException();
    }
}
