using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

public class CancellationTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    [Test]
    public void AlreadyCancelled_ThrowsWithoutLoading()
    {
        using var cache = TestCaches.Create();
        int calls = 0;

        Assert.CatchAsync<OperationCanceledException>(async () =>
            await cache.GetOrLoadAsync("k", _ => Task.FromResult(++calls), cancellationToken: new CancellationToken(true)));
        Assert.That(calls, Is.Zero);
    }

    [Test]
    public async Task OneCallerCancels_OthersStillGetTheValue_LoaderNotCancelled()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<int>();
        using var leaving = new CancellationTokenSource();

        var leaver = cache.GetOrLoadAsync("k", loader.Load, cancellationToken: leaving.Token).AsTask();
        var stayer = cache.GetOrLoadAsync("k", loader.Load).AsTask();
        await leaving.CancelAsync();

        Assert.CatchAsync<OperationCanceledException>(async () => await leaver.WaitAsync(Guard));
        Assert.That(loader.LastToken.IsCancellationRequested, Is.False);
        loader.Gate.SetResult(3);
        Assert.That(await stayer.WaitAsync(Guard), Is.EqualTo(3));
        Assert.That(await cache.GetOrLoadAsync("k", loader.Load), Is.EqualTo(3), "The value was cached for later callers.");
    }

    [Test]
    public async Task EveryCallerCancels_TheLoaderTokenIsCancelled_AndTheNextCallStartsFresh()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<int>();
        using var a = new CancellationTokenSource();
        using var b = new CancellationTokenSource();

        // A loader that honours its token, as a database call does: until it has ended it holds the key's one loader slot.
        Task<int> Load(CancellationToken token) => loader.Load(token).WaitAsync(token);
        var first = cache.GetOrLoadAsync("k", Load, cancellationToken: a.Token).AsTask();
        var second = cache.GetOrLoadAsync("k", Load, cancellationToken: b.Token).AsTask();
        await a.CancelAsync();
        Assert.That(loader.LastToken.IsCancellationRequested, Is.False);
        await b.CancelAsync();
        Assert.CatchAsync<OperationCanceledException>(async () => await first.WaitAsync(Guard));
        Assert.CatchAsync<OperationCanceledException>(async () => await second.WaitAsync(Guard));

        Assert.That(loader.LastToken.IsCancellationRequested, Is.True);
        await TestCaches.Until(() => cache.InFlightCount == 0, "the cancelled loader has ended");
        Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult(11)), Is.EqualTo(11));
    }
}
