using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

/// <summary>A failing L2 never fails a caller: it is logged, counted, and the value comes from L1 or the loader.</summary>
public class DistributedFaultTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    [TestCase(L2Fault.ThrowSynchronously)]
    [TestCase(L2Fault.ThrowAsynchronously)]
    public async Task ThrowingRead_IsAMiss_LoggedAndCounted(L2Fault fault)
    {
        var l2 = new FakeDistributedCache { ReadFault = fault };
        var logs = new LogCapture();
        using var cache = TestCaches.Create(l2: l2, logs: logs);
        using var metrics = new MetricCapture(cache.Name);

        int value = await cache.GetOrLoadAsync("k", _ => Task.FromResult(5));

        Assert.That(value, Is.EqualTo(5));
        Assert.That(logs.Count(Log.L2ReadFailedId), Is.EqualTo(1));
        Assert.That(metrics["cacheguard.cache.l2.errors|error.type=exception"], Is.EqualTo(1));
        Assert.That(metrics["cacheguard.cache.l2.errors|cache.operation=read"], Is.EqualTo(1));
        Assert.That(l2.Sets, Is.EqualTo(1), "The loaded value is still offered to L2.");
    }

    [TestCase(L2Fault.ThrowSynchronously)]
    [TestCase(L2Fault.ThrowAsynchronously)]
    public async Task ThrowingWrite_IsSkipped_TheValueIsServedAndKeptInL1(L2Fault fault)
    {
        var l2 = new FakeDistributedCache { WriteFault = fault };
        var logs = new LogCapture();
        using var cache = TestCaches.Create(l2: l2, logs: logs);
        int calls = 0;

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult(++calls)), Is.EqualTo(1));
        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult(++calls)), Is.EqualTo(1));
        await cache.SetAsync("k2", 2);

        Assert.That(logs.Count(Log.L2WriteFailedId), Is.EqualTo(2));
        Assert.That(cache.IsInL1("k2"), Is.True);
    }

    [Test]
    public async Task HangingRead_TimesOutOnTheInjectedClock_ThenTheLoaderServes()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache { ReadFault = L2Fault.Hang };
        var logs = new LogCapture();
        using var cache = TestCaches.Create(o => o.DistributedCacheTimeout = TimeSpan.FromSeconds(2), l2: l2, time: time, logs: logs);
        using var metrics = new MetricCapture(cache.Name);

        Task<int> call = cache.GetOrLoadAsync("k", _ => Task.FromResult(8)).AsTask();
        await l2.ReadEntered.Task.WaitAsync(Guard);
        time.Advance(TimeSpan.FromSeconds(2) - TimeSpan.FromTicks(1));
        Assert.That(call.IsCompleted, Is.False, "Still within the timeout.");
        time.Advance(TimeSpan.FromTicks(1));

        Assert.That(await call.WaitAsync(Guard), Is.EqualTo(8));
        Assert.That(logs.Count(Log.L2ReadTimedOutId), Is.EqualTo(1));
        Assert.That(metrics["cacheguard.cache.l2.errors|error.type=timeout"], Is.EqualTo(1));
    }

    [Test]
    public async Task HangingWrite_TimesOut_TheCallerStillGetsTheValue()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache { WriteFault = L2Fault.Hang };
        var logs = new LogCapture();
        using var cache = TestCaches.Create(l2: l2, time: time, logs: logs);

        Task<int> call = cache.GetOrLoadAsync("k", _ => Task.FromResult(8)).AsTask();
        await l2.WriteEntered.Task.WaitAsync(Guard);
        time.Advance(TimeSpan.FromSeconds(2));

        Assert.That(await call.WaitAsync(Guard), Is.EqualTo(8));
        Assert.That(logs.Count(Log.L2WriteTimedOutId), Is.EqualTo(1));
        Assert.That(cache.IsInL1("k"), Is.True);
    }

    [Test]
    public async Task GarbagePayload_IsAMiss_LoggedAndOverwrittenByTheFreshValue()
    {
        var l2 = new FakeDistributedCache();
        l2.PutRaw("k", [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        var logs = new LogCapture();
        using var cache = TestCaches.Create(l2: l2, logs: logs);

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("fresh")), Is.EqualTo("fresh"));

        Assert.That(logs.Count(Log.L2PayloadRejectedId), Is.EqualTo(1));
        using var other = TestCaches.Create(l2: l2);
        Assert.That(await other.GetOrLoadAsync("k", _ => Task.FromResult("loader")), Is.EqualTo("fresh"), "L2 now holds the fresh value.");
    }

    [Test]
    public async Task TruncatedEnvelope_IsAMiss()
    {
        var l2 = new FakeDistributedCache();
        using (var writer = TestCaches.Create(l2: l2))
        {
            await writer.SetAsync("k", "a long enough value");
        }

        byte[] raw = l2.Raw("k")!;
        l2.PutRaw("k", raw[..^3]);
        var logs = new LogCapture();
        using var cache = TestCaches.Create(l2: l2, logs: logs);

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("reloaded")), Is.EqualTo("reloaded"));
        Assert.That(logs.Entries.Single(e => e.Id.Id == Log.L2PayloadRejectedId).Message, Does.Contain("truncated"));
    }

    [Test]
    public async Task UndeserializablePayload_IsAMiss()
    {
        var l2 = new FakeDistributedCache();
        using (var writer = TestCaches.Create(l2: l2))
        {
            await writer.SetAsync("k", new Point(1, 2));
        }

        // Same envelope, same type tag, but the JSON is broken.
        byte[] raw = l2.Raw("k")!;
        raw[^1] = (byte)'!';
        l2.PutRaw("k", raw);
        var logs = new LogCapture();
        using var cache = TestCaches.Create(l2: l2, logs: logs);

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult(new Point(3, 4))), Is.EqualTo(new Point(3, 4)));
        Assert.That(logs.Entries.Single(e => e.Id.Id == Log.L2PayloadRejectedId).Exception, Is.Not.Null);
    }

    [Test]
    public async Task FailingRemove_IsLogged_AndL1IsStillCleared()
    {
        var l2 = new FakeDistributedCache();
        var logs = new LogCapture();
        using var cache = TestCaches.Create(l2: l2, logs: logs);
        await cache.SetAsync("k", 1);
        l2.WriteFault = L2Fault.ThrowSynchronously;

        await cache.RemoveAsync("k");

        Assert.That(logs.Count(Log.L2RemoveFailedId), Is.EqualTo(1));
        Assert.That(cache.IsInL1("k"), Is.False);
    }

    [Test]
    [Repeat(3)]
    public async Task StampedeOverAFailingL2_NoCallerSeesAnException()
    {
        var l2 = new FakeDistributedCache { ReadFault = L2Fault.ThrowAsynchronously, WriteFault = L2Fault.ThrowAsynchronously };
        using var cache = TestCaches.Create(l2: l2);
        var loader = new TestCaches.GatedLoader<int>();

        var calls = Enumerable.Range(0, 1000).Select(_ => cache.GetOrLoadAsync("k", loader.Load).AsTask()).ToArray();
        await TestCaches.Until(() => loader.Calls == 1, "the load starts after the failed read");
        loader.Gate.SetResult(1);

        Assert.That(await Task.WhenAll(calls).WaitAsync(Guard), Has.All.EqualTo(1));
        Assert.That(l2.Gets, Is.EqualTo(1));
    }

    [Test]
    public async Task LogLines_HideKeys_UnlessIncludeKeysInTelemetry()
    {
        var hidden = new LogCapture();
        using (var cache = TestCaches.Create(l2: new FakeDistributedCache { ReadFault = L2Fault.ThrowSynchronously }, logs: hidden))
        {
            await cache.GetOrLoadAsync("user:alice@example.com", _ => Task.FromResult(1));
        }

        var shown = new LogCapture();
        using (var cache = TestCaches.Create(o => o.IncludeKeysInTelemetry = true, l2: new FakeDistributedCache { ReadFault = L2Fault.ThrowSynchronously }, logs: shown))
        {
            await cache.GetOrLoadAsync("user:alice@example.com", _ => Task.FromResult(1));
        }

        string hiddenLine = hidden.Entries.Single(e => e.Id.Id == Log.L2ReadFailedId).Message;
        Assert.That(hiddenLine, Does.Not.Contain("alice").And.Contain("(hidden)"));
        Assert.That(shown.Entries.Single(e => e.Id.Id == Log.L2ReadFailedId).Message, Does.Contain("user:alice@example.com"));
    }

    public sealed record Point(int X, int Y);
}
