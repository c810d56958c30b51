namespace CacheGuard.Internal;

/// <summary>
/// The longest physical lifetime (fail-safe window included) this node has written, never shorter than the default
/// expiration: how long knowledge of a tag invalidation, or a removal mark in L2, must be kept so nothing it concerns
/// outlives it.
/// </summary>
internal sealed class LifetimeHorizon(TimeSpan defaultExpiration)
{
    private long _ticks = defaultExpiration.Ticks;

    public long Ticks => Volatile.Read(ref _ticks);

    public TimeSpan Lifetime => TimeSpan.FromTicks(Ticks);

    /// <summary>Widens the horizon: called for every lifetime written.</summary>
    public void Note(long physicalTicks)
    {
        for (long seen = Volatile.Read(ref _ticks); physicalTicks > seen; seen = Volatile.Read(ref _ticks))
        {
            if (Interlocked.CompareExchange(ref _ticks, physicalTicks, seen) == seen)
            {
                break;
            }
        }
    }
}
