namespace CacheGuard.Soak;

/// <summary>
/// Draws ranks 0..n-1 with probability proportional to 1 / (rank + 1)^s: a few very hot keys and a long tail. The
/// cumulative distribution is built once; a draw is one binary search.
/// </summary>
internal sealed class Zipf
{
    private readonly double[] _cumulative;

    public Zipf(int count, double exponent)
    {
        _cumulative = new double[count];
        double sum = 0;
        for (int rank = 0; rank < count; rank++)
        {
            sum += 1.0 / Math.Pow(rank + 1, exponent);
            _cumulative[rank] = sum;
        }

        for (int rank = 0; rank < count; rank++)
        {
            _cumulative[rank] /= sum;
        }
    }

    public int Next(Random random)
    {
        int index = Array.BinarySearch(_cumulative, random.NextDouble());
        return Math.Min(index < 0 ? ~index : index, _cumulative.Length - 1);
    }
}

/// <summary>Deterministic seeds for the run's independent random streams (HashCode is randomised per process).</summary>
internal static class Seeds
{
    /// <summary>SplitMix64 of the run's seed and a stream number.</summary>
    public static int Derive(int seed, int stream)
    {
        ulong z = unchecked(((ulong)(uint)seed << 32) + (ulong)stream + 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return (int)(uint)(z ^ (z >> 31));
    }
}
