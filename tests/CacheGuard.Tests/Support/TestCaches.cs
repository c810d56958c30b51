using CacheGuard.Internal;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Tests.Support;

/// <summary>Builds a fresh cache per test, with a unique name so metric listeners never see another test's cache.</summary>
public static class TestCaches
{
    private static int s_counter;

    internal static DefaultCoalescingCache Create(
        Action<CoalescingCacheOptions>? configure = null,
        IDistributedCache? l2 = null,
        FakeTimeProvider? time = null,
        LogCapture? logs = null,
        Func<double>? random = null,
        IDistributedCacheHealth? health = null)
    {
        var options = new CoalescingCacheOptions { Name = $"test-{Interlocked.Increment(ref s_counter)}" };
        configure?.Invoke(options);
        return new DefaultCoalescingCache(options, l2, time ?? new FakeTimeProvider(), logs, meterFactory: null, serializers: null, random: random, health: health);
    }

    /// <summary>A loader whose result the test releases: count its calls, hold it open, then let it finish.</summary>
    public sealed class GatedLoader<T>
    {
        private int _calls;

        public TaskCompletionSource<T> Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Calls => Volatile.Read(ref _calls);

        public CancellationToken LastToken { get; private set; }

        public Task<T> Load(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            LastToken = cancellationToken;
            return Gate.Task;
        }
    }

    /// <summary>Spins (yielding) until a condition holds, failing after a generous deadline: guards against hangs, decides nothing.</summary>
    public static async Task Until(Func<bool> condition, string what)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!condition())
        {
            if (deadline.IsCancellationRequested)
            {
                Assert.Fail($"Timed out waiting until {what}.");
            }

            await Task.Yield();
        }
    }
}
