namespace CacheGuard.Internal;

/// <summary>The avalanche guard: stretches a lifetime by a random fraction so entries written together expire apart.</summary>
internal static class Jitter
{
    /// <summary>
    /// Returns <paramref name="lifetime"/> × (1 + <paramref name="ratio"/> × <paramref name="sample"/>): never shorter than
    /// asked, and uniform over [lifetime, lifetime × (1 + ratio)) when <paramref name="sample"/> is uniform in [0, 1).
    /// </summary>
    public static TimeSpan Apply(TimeSpan lifetime, double ratio, double sample)
    {
        if (ratio <= 0 || sample <= 0)
        {
            return lifetime;
        }

        double extra = lifetime.Ticks * ratio * sample;
        return TimeSpan.FromTicks(lifetime.Ticks + (long)extra);
    }
}
