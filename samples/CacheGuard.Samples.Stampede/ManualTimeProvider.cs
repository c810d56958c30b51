namespace CacheGuard.Samples.Stampede;

/// <summary>
/// A clock that stands still until <see cref="Advance"/> moves it, so a minute of cache lifetime passes instantly.
/// CacheGuard and its in-process cache read the time on each access, so this sample needs no timers: this clock
/// does not fire any (timers created from it run on real time).
/// </summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private long _utcNowTicks = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _utcNowTicks), TimeSpan.Zero);

    /// <summary>Moves the clock forward.</summary>
    public void Advance(TimeSpan delta)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delta, TimeSpan.Zero);
        Interlocked.Add(ref _utcNowTicks, delta.Ticks);
    }
}
