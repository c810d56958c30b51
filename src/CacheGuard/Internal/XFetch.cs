namespace CacheGuard.Internal;

/// <summary>
/// Probabilistic early expiration (Vattani, Chierichetti and Lowenstein, "Optimal Probabilistic Cache Stampede
/// Prevention", VLDB 2015): refresh when <c>now − Δ·β·ln(U) ≥ expiry</c>, U uniform in (0, 1]. The chance rises as expiry
/// nears, and earlier for values that take long (Δ) to recompute.
/// </summary>
internal static class XFetch
{
    /// <param name="nowTicks">The current time.</param>
    /// <param name="expiresTicks">When the value expires.</param>
    /// <param name="deltaTicks">How long recomputing it took last time.</param>
    /// <param name="beta">β: above 1 favours earlier refreshes.</param>
    /// <param name="sample">A uniform sample in [0, 1).</param>
    public static bool ShouldRefresh(long nowTicks, long expiresTicks, long deltaTicks, double beta, double sample)
    {
        long gap = expiresTicks - nowTicks;
        if (gap <= 0)
        {
            return true;
        }

        if (deltaTicks <= 0)
        {
            return false;
        }

        double u = 1.0 - sample; // (0, 1]: ln(u) is finite and ≤ 0
        return -deltaTicks * beta * Math.Log(u) >= gap;
    }

    /// <summary>The probability that <see cref="ShouldRefresh"/> says yes, for a gap before expiry: exp(−gap / (Δ·β)).</summary>
    public static double Probability(long gapTicks, long deltaTicks, double beta) =>
        gapTicks <= 0 ? 1 : deltaTicks <= 0 ? 0 : Math.Exp(-gapTicks / (deltaTicks * beta));
}
