using System.Globalization;
using HdrHistogram;

namespace CacheGuard.Soak;

/// <summary>
/// Issue 15's stall bound: after Redis answers again (a pause resumed, a restart ready), no miss waits longer than its
/// loader plus <see cref="SoakSettings.StallBound"/> (p99). Judged for every call that was not an L1 hit, ended after
/// a recovery and started no later than <see cref="SoakSettings.StallHorizon"/> after it: its wait counts from the
/// later of its start and the recovery; its loader time is the longest load of its key (on any node) within that wait.
/// The excess of the one over the other is recorded. Misses that a database fault (error burst, latency spike) touched
/// are left out: they wait for slow or failing loads, not for the cache's recovery from Redis. So are misses that
/// overlap the start of the next Redis fault: they wait on that fault, not on this recovery.
/// </summary>
internal sealed class StallWatch(SoakSettings settings, HealthTimeline health, SoakLog log)
{
    private const int Samples = 15;
    private const long Highest = 600_000_000; // 10 minutes in microseconds

    private readonly Lock _gate = new();
    private readonly LongHistogram _excess = new(Highest, 3); // microseconds
    private readonly Dictionary<long, Recovery> _perRecovery = [];
    private readonly List<(long Excess, string Text)> _worst = [];
    private readonly long _horizon = Clock.Ticks(settings.StallHorizon);
    private readonly long _bound = Clock.Ticks(settings.StallBound);
    private readonly long _databaseMargin = Clock.Ticks(settings.LoaderHardTimeout + TimeSpan.FromSeconds(3));
    private long _over;

    public long Measured
    {
        get
        {
            lock (_gate)
            {
                return _excess.TotalCount;
            }
        }
    }

    public long OverBound => Interlocked.Read(ref _over);

    /// <summary>The excess at <paramref name="percentile"/>, in milliseconds (0 when nothing was measured).</summary>
    public double ExcessMilliseconds(double percentile)
    {
        lock (_gate)
        {
            return _excess.TotalCount == 0 ? 0 : (percentile >= 100 ? _excess.GetMaxValue() : _excess.GetValueAtPercentile(percentile)) / 1000.0;
        }
    }

    /// <summary>Recoveries whose misses broke the bound at p99 (more than 1 % of them over it).</summary>
    public int RecoveriesBeyondBound
    {
        get
        {
            lock (_gate)
            {
                return _perRecovery.Values.Count(r => !r.P99Ok);
            }
        }
    }

    /// <summary>Recoveries measured.</summary>
    public int Recoveries
    {
        get
        {
            lock (_gate)
            {
                return _perRecovery.Count;
            }
        }
    }

    /// <summary>Considers a call that was not answered from L1; <paramref name="rows"/> are its keys.</summary>
    public void OnMiss(int node, string operation, IReadOnlyList<DbRow> rows, long start, long end)
    {
        if (health.LastRecoveryBefore(end) is not { } recovery || start > recovery + _horizon)
        {
            return;
        }

        // A database fault makes loads slow or failing: a miss then waits for its own loader or for the lock owner's,
        // which says nothing about how the cache recovers from Redis. Such misses are not measured (the margin covers a
        // load the fault slowed that outlives the fault).
        if (health.Disturbed(Disturbs.Database, start - _databaseMargin, end))
        {
            return;
        }

        // The next Redis fault ends the time after this recovery: a miss that overlaps its start waits on that fault
        // (its timeouts and the lock's liveness rule), which the other invariants judge.
        if (health.FaultStartedWithin(Disturbs.Lock | Disturbs.Backplane, recovery, end))
        {
            return;
        }

        long from = Math.Max(start, recovery);
        long loader = 0;
        foreach (DbRow row in rows)
        {
            loader = Math.Max(loader, SimulatedDatabase.LongestLoadWithin(row, from, end));
        }

        long excess = Math.Max(0, end - from - loader);
        bool over = excess > _bound;
        lock (_gate)
        {
            _excess.RecordValue(Math.Min(Clock.Microseconds(0, excess), Highest));
            if (!_perRecovery.TryGetValue(recovery, out Recovery? after))
            {
                after = new Recovery();
                _perRecovery.Add(recovery, after);
            }

            after.Record(excess, over);
            bool recoveryWorst = excess >= after.Max;
            if (over && (recoveryWorst || _worst.Count < Samples || excess > _worst[^1].Excess))
            {
                string text = string.Create(
                    CultureInfo.InvariantCulture,
                    $"STALL node{node} {operation}({rows[0].Key}{(rows.Count > 1 ? $" +{rows.Count - 1}" : string.Empty)}) started at {Clock.Seconds(start):0.000}s, Redis answered again at {Clock.Seconds(recovery):0.000}s; " +
                    $"waited {Clock.Milliseconds(from, end):0} ms after that, its loader {Clock.Milliseconds(0, loader):0} ms: {Clock.Milliseconds(0, excess):0} ms over");
                if (recoveryWorst)
                {
                    after.Worst = text;
                }

                _worst.Add((excess, text));
                _worst.Sort((a, b) => b.Excess.CompareTo(a.Excess));
                if (_worst.Count > Samples)
                {
                    _worst.RemoveAt(_worst.Count - 1);
                }
            }
        }

        if (over)
        {
            Interlocked.Increment(ref _over);
        }
    }

    /// <summary>Writes, per recovery, how many misses were measured and the worst excess, then the worst misses overall.</summary>
    public void WriteSummary()
    {
        lock (_gate)
        {
            foreach ((long recovery, Recovery after) in _perRecovery.OrderBy(p => p.Key))
            {
                log.Write(string.Create(CultureInfo.InvariantCulture, $"stall after the recovery at {Clock.Seconds(recovery):0.000}s: {after.Count} misses measured, {after.Over} over {settings.StallBound.TotalMilliseconds:0} ms, p99 {(after.P99Ok ? "within" : "beyond")} the bound (~{after.ApproximateP99Milliseconds:0} ms), worst {Clock.Milliseconds(0, after.Max):0} ms beyond the loader"), console: true);
                if (after.Worst is not null)
                {
                    log.Write("  worst: " + after.Worst, console: true);
                }
            }

            foreach ((_, string text) in _worst)
            {
                log.Write(text);
            }
        }
    }

    /// <summary>The misses measured after one recovery: counts for the p99 verdict, and log2 buckets for an approximate p99.</summary>
    private sealed class Recovery
    {
        private readonly long[] _buckets = new long[64]; // bucket b holds excesses of [2^(b/2), 2^((b+1)/2)) microseconds

        public long Count { get; private set; }

        public long Over { get; private set; }

        public long Max { get; private set; }

        public string? Worst { get; set; }

        /// <summary>The p99 is within the bound exactly when at most 1 % of the misses are over it.</summary>
        public bool P99Ok => Over * 100 <= Count;

        public double ApproximateP99Milliseconds
        {
            get
            {
                long rank = (long)Math.Ceiling(Count * 0.99);
                long seen = 0;
                for (int b = 0; b < _buckets.Length; b++)
                {
                    seen += _buckets[b];
                    if (seen >= rank)
                    {
                        return Math.Min(Math.Pow(2, (b + 1) / 2.0), Clock.Microseconds(0, Max)) / 1000.0; // the bucket's upper edge, at most the worst
                    }
                }

                return 0;
            }
        }

        public void Record(long excess, bool over)
        {
            Count++;
            Over += over ? 1 : 0;
            Max = Math.Max(Max, excess);
            long microseconds = Clock.Microseconds(0, excess);
            _buckets[Math.Clamp((int)(2 * Math.Log2(microseconds)), 0, _buckets.Length - 1)]++;
        }
    }
}
