using System.Globalization;

namespace CacheGuard.Soak;

/// <summary>
/// Everything one soak run is configured with: the command-line knobs, the cache options every node gets, and the
/// invariant windows derived from those options. Built once, read everywhere, never mutated.
/// </summary>
internal sealed record SoakSettings
{
    // ---- command-line knobs ----

    /// <summary>How long the workload runs (faults, then a write-free tail in which convergence is measured).</summary>
    public required TimeSpan Duration { get; init; }

    /// <summary>Seeds the fault schedule, every worker's operation sequence and the database's randomness.</summary>
    public required int Seed { get; init; }

    /// <summary>Number of distinct keys (rows); key popularity is Zipf-distributed over them.</summary>
    public int Keys { get; init; } = 1000;

    /// <summary>Zipf exponent: rank r is drawn with probability proportional to 1 / r^s.</summary>
    public double ZipfExponent { get; init; } = 1.0;

    /// <summary>Target calls per second across the fleet (a ceiling: workers are closed-loop).</summary>
    public int Rate { get; init; } = 5000;

    /// <summary>Cache nodes, each its own service provider with its own connection, L1, backplane and lock.</summary>
    public int Nodes { get; init; } = 3;

    /// <summary>Concurrent workers per node (the most calls a node has in flight).</summary>
    public int WorkersPerNode { get; init; } = 16;

    /// <summary>Database latency per query when no spike is on, drawn uniformly from this range.</summary>
    public TimeSpan DbLatencyMin { get; init; } = TimeSpan.FromMilliseconds(1);

    /// <inheritdoc cref="DbLatencyMin"/>
    public TimeSpan DbLatencyMax { get; init; } = TimeSpan.FromMilliseconds(6);

    /// <summary>Probability that a query fails outside error bursts.</summary>
    public double DbErrorRate { get; init; }

    /// <summary>Whether the fault schedule runs (off: a baseline with Redis healthy throughout).</summary>
    public bool Faults { get; init; } = true;

    /// <summary>Runs the harness against <see cref="PassThroughCache"/> (no caching, no coalescing): a check of the checker.</summary>
    public bool PassThrough { get; init; }

    /// <summary>Where the log, the per-second CSV and the chart go.</summary>
    public required string ArtifactsDirectory { get; init; }

    /// <summary>When set, the chart is also written here (the documented run: docs/images/soak-*.png).</summary>
    public string? DocsImage { get; init; }

    // ---- invariant windows and bounds (defaults derived from the cache options below; see docs/reliability.md) ----

    /// <summary>Staleness allowed while Redis is healthy: the backplane's propagation delay.</summary>
    public TimeSpan PropagationWindow { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long after a Redis fault ends (Redis answers again) the fleet still counts as recovering.</summary>
    public TimeSpan Settle { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Issue 15's target: after Redis answers again, a miss waits at most its loader plus this (p99).</summary>
    public TimeSpan StallBound { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Misses that start within this long after Redis answers again are measured against <see cref="StallBound"/>.</summary>
    public TimeSpan StallHorizon { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Largest managed-heap growth (after a full GC) from the end of warm-up to the end of the run.</summary>
    public double HeapBoundMegabytes { get; init; } = 32;

    /// <summary>Largest lateness of a 100 ms heartbeat timer before it counts as thread-pool starvation.</summary>
    public TimeSpan StarvationBound { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>L1-hit latency p99 bound, checked in every 10 s window.</summary>
    public TimeSpan L1HitP99Bound { get; init; } = TimeSpan.FromMilliseconds(1);

    // ---- the cache options every node runs with ----

    /// <summary>L2 lifetime (<c>DefaultExpiration</c>): short enough that entries expire during a run.</summary>
    public TimeSpan L2Expiration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>L1 lifetime (<c>DefaultLocalExpiration</c>): bounds staleness while Redis is unhealthy.</summary>
    public TimeSpan L1Expiration { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary><c>JitterRatio</c> (the default).</summary>
    public double JitterRatio { get; init; } = 0.1;

    /// <summary><c>DistributedCacheTimeout</c>: every L2 call.</summary>
    public TimeSpan L2Timeout { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary><c>LoaderHardTimeout</c>: callers get a <see cref="TimeoutException"/> past it (an allowed error).</summary>
    public TimeSpan LoaderHardTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary><c>DistributedCacheCircuitBreakerDuration</c>.</summary>
    public TimeSpan BreakerDuration { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary><c>DistributedLoadLockTimeout</c> (the default).</summary>
    public TimeSpan LoadLockTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Redis command and connect timeout, in the connection string.</summary>
    public TimeSpan RedisCommandTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Keys are split into this many groups; the first half of the groups carry a tag (<c>RemoveByTagAsync</c>).</summary>
    public int Groups { get; init; } = 8;

    // ---- derived ----

    /// <summary>The longest an L1 entry lives: <c>DefaultLocalExpiration × (1 + JitterRatio)</c>.</summary>
    public TimeSpan L1Window => L1Expiration * (1 + JitterRatio);

    /// <summary>Staleness allowed when the interval touches a Redis fault (or its settle time): L1 lifetime plus propagation.</summary>
    public TimeSpan UnhealthyWindow => L1Window + PropagationWindow;

    /// <summary>After the last fault ended and the last write completed, every node must serve current data within this.</summary>
    public TimeSpan ConvergenceBound => Settle + L1Window + PropagationWindow;

    /// <summary>The first part of the run: no faults, and the heap baseline is taken at its end.</summary>
    public TimeSpan WarmUp => Duration < TimeSpan.FromMinutes(2) ? TimeSpan.FromSeconds(5) : TimeSpan.FromSeconds(20);

    /// <summary>The last part of the run: no faults and no writes, so the fleet can be seen to converge.</summary>
    public TimeSpan Tail => Max(ConvergenceBound + TimeSpan.FromSeconds(3), Duration * 0.05);

    /// <summary>The fault schedule places every fault (and its end) within [WarmUp, this].</summary>
    public TimeSpan FaultsEnd => Duration - Tail;

    public static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>Parses <c>90s</c>, <c>30m</c>, <c>1h</c>, <c>500ms</c> or a <see cref="TimeSpan"/> (<c>00:01:00</c>).</summary>
    public static bool TryParseDuration(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        (string suffix, double scale)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        foreach ((string suffix, double scale) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out double number)
                && number > 0)
            {
                value = TimeSpan.FromSeconds(number * scale);
                return true;
            }
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value > TimeSpan.Zero;
    }

    /// <summary>Rejects settings the run cannot honour, naming the option and the limit.</summary>
    public void Validate()
    {
        if (Duration < TimeSpan.FromSeconds(30))
        {
            throw new ArgumentOutOfRangeException(nameof(Duration), Duration, "--duration must be at least 30s (warm-up, faults and the convergence tail).");
        }

        if (FaultsEnd - WarmUp < TimeSpan.FromSeconds(5))
        {
            throw new ArgumentOutOfRangeException(nameof(Duration), Duration, $"--duration {Duration.TotalSeconds:0}s leaves under 5 s for faults between warm-up ({WarmUp.TotalSeconds:0} s) and the tail ({Tail.TotalSeconds:0} s).");
        }

        if (Keys < Groups * 4)
        {
            throw new ArgumentOutOfRangeException(nameof(Keys), Keys, $"--keys must be at least {Groups * 4}.");
        }

        if (Rate < 10 || Rate > 200_000)
        {
            throw new ArgumentOutOfRangeException(nameof(Rate), Rate, "--rate must be between 10 and 200000 calls per second.");
        }

        if (Nodes is < 2 or > 8)
        {
            throw new ArgumentOutOfRangeException(nameof(Nodes), Nodes, "--nodes must be between 2 and 8.");
        }

        if (WorkersPerNode is < 1 or > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(WorkersPerNode), WorkersPerNode, "--workers must be between 1 and 256.");
        }

        if (DbErrorRate is < 0 or > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(DbErrorRate), DbErrorRate, "--db-error-rate must be between 0 and 1.");
        }

        if (DbLatencyMin < TimeSpan.Zero || DbLatencyMax < DbLatencyMin || DbLatencyMax >= LoaderHardTimeout)
        {
            throw new ArgumentOutOfRangeException(nameof(DbLatencyMax), DbLatencyMax, $"--db-latency must be a range min..max with 0 <= min <= max < LoaderHardTimeout ({LoaderHardTimeout.TotalMilliseconds} ms).");
        }
    }
}
