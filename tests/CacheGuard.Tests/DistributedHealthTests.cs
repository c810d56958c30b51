using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

/// <summary>An L2 client that knows its connection state tells the cache, so no caller waits on a disconnected L2.</summary>
public class DistributedHealthTests
{
    private sealed class FakeHealth : IDistributedCacheHealth
    {
        private volatile bool _available = true;

        public bool IsAvailable => _available;

        public event EventHandler? AvailabilityChanged;

        public void Set(bool available)
        {
            _available = available;
            AvailabilityChanged?.Invoke(this, EventArgs.Empty);
        }

        public bool IsConnectionFailure(Exception exception) => exception is IOException;
    }

    private sealed class ConnectionLostCache(FakeTimeProvider time) : Microsoft.Extensions.Caching.Distributed.IDistributedCache
    {
        private readonly FakeDistributedCache _inner = new(time);

        public bool Lost { get; set; }

        public int Calls { get; private set; }

        public FakeDistributedCache Inner => _inner;

        public byte[]? Get(string key) => throw new NotSupportedException();

        public Task<byte[]?> GetAsync(string key, CancellationToken token = default)
        {
            Calls++;
            return Lost ? Task.FromException<byte[]?>(new IOException("connection reset")) : _inner.GetAsync(key, token);
        }

        public void Refresh(string key) => throw new NotSupportedException();

        public Task RefreshAsync(string key, CancellationToken token = default) => Task.CompletedTask;

        public void Remove(string key) => throw new NotSupportedException();

        public Task RemoveAsync(string key, CancellationToken token = default)
        {
            Calls++;
            return Lost ? Task.FromException(new IOException("connection reset")) : _inner.RemoveAsync(key, token);
        }

        public void Set(string key, byte[] value, Microsoft.Extensions.Caching.Distributed.DistributedCacheEntryOptions options) => throw new NotSupportedException();

        public Task SetAsync(string key, byte[] value, Microsoft.Extensions.Caching.Distributed.DistributedCacheEntryOptions options, CancellationToken token = default)
        {
            Calls++;
            return Lost ? Task.FromException(new IOException("connection reset")) : _inner.SetAsync(key, value, options, token);
        }
    }

    [Test]
    public async Task WhileUnavailable_NoL2CallIsMade_AndWritesWaitForReplay()
    {
        var time = new FakeTimeProvider();
        var l2 = new FakeDistributedCache(time);
        var health = new FakeHealth();
        using var cache = TestCaches.Create(l2: l2, time: time, health: health);

        health.Set(false);
        Assert.That(await cache.GetOrLoadAsync("a", _ => Task.FromResult(1)), Is.EqualTo(1));
        await cache.SetAsync("b", 2);
        Assert.That(l2.Gets + l2.Sets, Is.Zero, "A disconnected L2 is skipped without a call.");
        Assert.That(cache.PendingWrites, Is.EqualTo(1), "The write waits for replay; the load's value does not (the next load after recovery stores a fresh one).");

        health.Set(true);
        await TestCaches.Until(() => cache.PendingWrites == 0 && cache.BackgroundCount == 0, "the replay ran");
        Assert.That(l2.Sets, Is.EqualTo(1), "Replayed as soon as L2 is back, without waiting for a breaker probe.");
        Assert.That(l2.Keys, Is.EquivalentTo(new[] { "b" }));
    }

    [Test]
    public async Task AConnectionFailure_OpensTheBreakerAtOnce_AndRecoveryClosesIt()
    {
        var time = new FakeTimeProvider();
        var l2 = new ConnectionLostCache(time) { Lost = true };
        var health = new FakeHealth();
        using var cache = TestCaches.Create(o => o.DistributedCacheCircuitBreakerThreshold = 5, l2: l2, time: time, health: health);

        Assert.That(await cache.GetOrLoadAsync("a", _ => Task.FromResult(1)), Is.EqualTo(1));
        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Open), "One connection-level failure opens it, below the threshold of 5.");
        int calls = l2.Calls;
        Assert.That(await cache.GetOrLoadAsync("b", _ => Task.FromResult(2)), Is.EqualTo(2));
        await cache.SetAsync("c", 3);
        await cache.SetAsync("d", 4);
        Assert.That(l2.Calls, Is.EqualTo(calls), "No L2 call while open.");

        l2.Lost = false;
        health.Set(true);
        Assert.That(cache.BreakerState, Is.EqualTo(BreakerState.Closed), "The client's 'connection restored' closes the breaker without waiting for the open period.");
        await TestCaches.Until(() => cache.PendingWrites == 0 && cache.BackgroundCount == 0, "the replay ran");
        Assert.That(l2.Inner.Keys, Is.EquivalentTo(new[] { "c", "d" }), "Both writes skipped while it was open reached L2 after recovery (loads are not replayed).");
    }
}
