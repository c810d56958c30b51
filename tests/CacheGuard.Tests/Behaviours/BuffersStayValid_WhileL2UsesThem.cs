using System.Buffers;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (g): a pooled buffer handed to <c>IBufferDistributedCache</c> (the sequence given to
/// <c>SetAsync</c>) stays the cache's until the L2 call ends, even when the caller stops waiting (its token is cancelled)
/// or the call outlives <see cref="CoalescingCacheOptions.DistributedCacheTimeout"/>. Giving it back to the pool earlier
/// lets the next renter's bytes reach L2. (Reads lend no buffer: they use <c>GetAsync</c>, one command on RedisCache.)
/// </summary>
public class BuffersStayValid_WhileL2UsesThem
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    /// <summary>Holds the calls that carry the test's value (whatever the cache names its L2 key).</summary>
    private static bool Held(byte[] stored) => stored.AsSpan().IndexOf("the value being"u8) >= 0;

    /// <summary>Rents, fills and returns pool buffers on this thread (the thread where a cancelled call's cleanup runs), as the next renters would.</summary>
    private static void UseThePool(Internal.DefaultCoalescingCache cache)
    {
        for (int i = 0; i < 8; i++)
        {
            foreach (int size in new[] { 64, 128, 256, 512, 1024 })
            {
                byte[] rented = ArrayPool<byte>.Shared.Rent(size);
                rented.AsSpan().Fill(0xEE);
                ArrayPool<byte>.Shared.Return(rented);
            }

            _ = cache.SetAsync($"other-{i}", "another value, another envelope");
        }
    }

    private static async Task IgnoreCancellationAsync(Task call)
    {
        try
        {
            await call.WaitAsync(Guard);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [Test]
    public async Task AWritesBuffer_WhenTheCallerCancels()
    {
        var time = new FakeTimeProvider();
        var l2 = new BufferDistributedCache { HoldWrites = Held };
        using var cache = TestCaches.Create(l2: l2, time: time);
        using var cts = new CancellationTokenSource();
        var write = cache.SetAsync("held", "the value being written", cancellationToken: cts.Token).AsTask();
        HeldBufferCall call = await l2.NextHeldAsync();

        cts.Cancel();
        UseThePool(cache);
        call.Release();

        Assert.That(await call.BufferWasValid.WaitAsync(Guard), Is.True, "The buffer given to SetAsync went back to the pool, and was reused, while the L2 call still read it.");
        await IgnoreCancellationAsync(write);
    }

    [Test]
    public async Task AWritesBuffer_WhenTheCallOutlivesItsDeadline()
    {
        var time = new FakeTimeProvider();
        var l2 = new BufferDistributedCache { HoldWrites = Held };
        using var cache = TestCaches.Create(l2: l2, time: time);
        var write = cache.SetAsync("held", "the value being written").AsTask();
        HeldBufferCall call = await l2.NextHeldAsync();

        time.Advance(TimeSpan.FromSeconds(2)); // DistributedCacheTimeout: the cache stops waiting
        await write.WaitAsync(Guard);
        UseThePool(cache);
        call.Release();

        Assert.That(await call.BufferWasValid.WaitAsync(Guard), Is.True, "The buffer given to SetAsync went back to the pool, and was reused, while the L2 call still read it.");
    }
}
