using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class StampedeTests
{
    private const int Callers = 10_000;
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    [Test]
    [Repeat(10)]
    public async Task ColdKey_TenThousandConcurrentCallers_OneL2ReadAndOneLoad()
    {
        var l2 = new FakeDistributedCache();
        using var cache = TestCaches.Create(l2: l2);
        var loader = new TestCaches.GatedLoader<string>();

        // Two threads launch the callers at once, so joins race with the leader's start.
        using var start = new Barrier(2);
        Task<string>[] Launch()
        {
            start.SignalAndWait();
            var mine = new Task<string>[Callers / 2];
            for (int i = 0; i < mine.Length; i++)
            {
                mine[i] = cache.GetOrLoadAsync("hot", loader, static (l, ct) => l.Load(ct)).AsTask();
            }

            return mine;
        }

        var a = Task.Run(Launch);
        var b = Task.Run(Launch);
        var calls = (await a).Concat(await b).ToArray();

        await TestCaches.Until(() => loader.Calls == 1, "the single load starts");
        Assert.That(cache.WaitersFor("hot"), Is.EqualTo(Callers), "Every caller joined the one flight.");
        loader.Gate.SetResult("value");
        Assert.That(await Task.WhenAll(calls).WaitAsync(Guard), Has.All.EqualTo("value"));

        Assert.That(loader.Calls, Is.EqualTo(1));
        Assert.That(l2.Gets, Is.EqualTo(1));
        Assert.That(l2.Sets, Is.EqualTo(1));
        Assert.That(cache.InFlightCount, Is.Zero);
    }

    [Test]
    [Repeat(5)]
    public async Task ColdKey_CallersWithCancellableTokens_StillOneLoad()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<int>();
        using var cts = new CancellationTokenSource();

        var calls = new Task<int>[Callers];
        Parallel.For(0, Callers, i => calls[i] = cache.GetOrLoadAsync("hot", loader, static (l, ct) => l.Load(ct), cancellationToken: cts.Token).AsTask());
        await TestCaches.Until(() => cache.WaitersFor("hot") == Callers, "every caller joined");
        loader.Gate.SetResult(5);

        Assert.That(await Task.WhenAll(calls).WaitAsync(Guard), Has.All.EqualTo(5));
        Assert.That(loader.Calls, Is.EqualTo(1));
    }

    [Test]
    public async Task RecycledFlightRecords_NeverMixUpKeysOrValues()
    {
        using var cache = TestCaches.Create();
        for (int round = 0; round < 50; round++)
        {
            // A synchronous, uncontended miss leaves its flight record for this thread's next miss...
            Assert.That(await cache.GetOrLoadAsync($"sync{round}", _ => Task.FromResult(round)), Is.EqualTo(round));

            // ...which is contended and asynchronous: the record must behave as a fresh one.
            var loader = new TestCaches.GatedLoader<int>();
            var calls = Enumerable.Range(0, 20).Select(_ => cache.GetOrLoadAsync($"async{round}", loader.Load).AsTask()).ToArray();
            Assert.That(cache.WaitersFor($"async{round}"), Is.EqualTo(20));
            loader.Gate.SetResult(-round);
            Assert.That(await Task.WhenAll(calls).WaitAsync(Guard), Has.All.EqualTo(-round));
            Assert.That(loader.Calls, Is.EqualTo(1));
        }

        Assert.That(cache.InFlightCount, Is.Zero);
        for (int round = 0; round < 50; round++)
        {
            Assert.That(await cache.GetOrLoadAsync($"sync{round}", _ => Task.FromResult(-1)), Is.EqualTo(round));
            Assert.That(await cache.GetOrLoadAsync($"async{round}", _ => Task.FromResult(-1)), Is.EqualTo(-round));
        }
    }

    [Test]
    public async Task LoaderFailure_ReachesEveryJoinedCaller_AndTheNextCallLoadsAgain()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<int>();

        var calls = Enumerable.Range(0, 100).Select(_ => cache.GetOrLoadAsync("k", loader.Load).AsTask()).ToArray();
        await TestCaches.Until(() => cache.WaitersFor("k") == 100, "every caller joined");
        var failure = new InvalidDataException("db exploded");
        loader.Gate.SetException(failure);

        foreach (var call in calls)
        {
            var ex = Assert.ThrowsAsync<InvalidDataException>(async () => await call.WaitAsync(Guard));
            Assert.That(ex, Is.SameAs(failure));
        }

        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult(9)), Is.EqualTo(9), "Failures are not cached.");
    }
}
