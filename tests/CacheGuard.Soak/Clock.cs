using System.Diagnostics;

namespace CacheGuard.Soak;

/// <summary>
/// The run's one clock: <see cref="Stopwatch"/> timestamps (monotonic, real time). Every "when" in the soak (a write's
/// completion, a read's start, a fault's window) is such a timestamp, so they compare directly.
/// </summary>
internal static class Clock
{
    /// <summary>The timestamp the run started at: time 0 in logs and charts.</summary>
    public static long Origin { get; private set; } = Stopwatch.GetTimestamp();

    /// <summary>The wall-clock time at <see cref="Origin"/>, to place the cache's own UTC timestamps (L2 envelopes) on the run's axis.</summary>
    public static DateTimeOffset OriginUtc { get; private set; } = DateTimeOffset.UtcNow;

    public static long Now => Stopwatch.GetTimestamp();

    public static void Reset()
    {
        Origin = Stopwatch.GetTimestamp();
        OriginUtc = DateTimeOffset.UtcNow;
    }

    /// <summary>Seconds since the run started.</summary>
    public static double Seconds(long timestamp) => (timestamp - Origin) / (double)Stopwatch.Frequency;

    public static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    public static TimeSpan Span(long from, long to) => TimeSpan.FromSeconds((to - from) / (double)Stopwatch.Frequency);

    public static double Milliseconds(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;

    /// <summary>Microseconds between two timestamps, for the latency histograms.</summary>
    public static long Microseconds(long from, long to) => Math.Max(1, (to - from) * 1_000_000 / Stopwatch.Frequency);

    /// <summary>Nanoseconds between two timestamps, for the L1-hit histogram.</summary>
    public static long Nanoseconds(long from, long to) => Math.Max(1, (long)((to - from) * (1_000_000_000.0 / Stopwatch.Frequency)));

    /// <summary>The timestamp as "[  12.345s]", the prefix of every log line.</summary>
    public static string Stamp(long timestamp) => $"[{Seconds(timestamp),8:0.000}s]";
}
