namespace CacheGuard.Benchmarks;

/// <summary>
/// A clock the benchmark moves by hand: the L2-hit benchmark steps it past the L1 lifetime before each call, so every
/// call misses L1 and reads L2, without touching the cache's internals. Timestamps (deadlines, load durations) stay
/// on the real monotonic clock.
/// </summary>
internal sealed class ManualClock : TimeProvider
{
    private long _utcTicks = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Volatile.Read(ref _utcTicks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _utcTicks, by.Ticks);
}
