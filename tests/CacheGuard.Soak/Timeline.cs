using System.Globalization;
using System.Text;
using HdrHistogram;

namespace CacheGuard.Soak;

/// <summary>One second of the run, as the chart and the CSV show it.</summary>
internal sealed record SecondStats(
    double Time,
    long Calls,
    double P50Ms,
    double P99Ms,
    double MaxMs,
    long L1Hits,
    double L1HitP99Us,
    long UnexpectedErrors,
    long ExpectedErrors,
    long StaleBeyondWindow,
    long PendingWorkItems,
    int Threads,
    double HeartbeatLateMs);

/// <summary>
/// The run's time series and the latency invariant. Calls record their latency (all calls in microseconds; L1 hits,
/// the calls that completed synchronously, in nanoseconds) into HdrHistogram recorders that a sampler swaps every
/// second. A 100 ms heartbeat timer measures how late the thread pool runs it (starvation), and the sampler reads
/// <see cref="ThreadPool.PendingWorkItemCount"/>. L1-hit p99 is checked in every 10-second window.
/// </summary>
internal sealed class Timeline : IAsyncDisposable
{
    private const int WindowSeconds = 10;
    private static readonly long HeartbeatPeriod = Clock.Ticks(TimeSpan.FromMilliseconds(100));

    private const long CallsHighest = 600_000_000; // 10 minutes in microseconds
    private const long L1HitsHighest = 10_000_000_000; // 10 seconds in nanoseconds

    private readonly Recorder _calls = NewRecorder(CallsHighest);
    private readonly Recorder _l1Hits = NewRecorder(L1HitsHighest);
    private readonly LongHistogram _allCalls = new(CallsHighest, 3);
    private readonly LongHistogram _allL1Hits = new(L1HitsHighest, 3);
    private readonly LongHistogram _window = new(L1HitsHighest, 3);
    private readonly List<SecondStats> _seconds = [];
    private readonly List<(double Start, double P99Us, long Count)> _l1Windows = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Timer _heartbeat;
    private Task? _sampler;
    private long _unexpected;
    private long _expected;
    private long _stale;
    private long _lastBeat = Clock.Now;
    private long _lateThisSecond;
    private long _lateMax;
    private long _pendingMax;
    private int _windowSeconds;
    private bool _disposed;

    public Timeline()
    {
        _heartbeat = new Timer(static s => ((Timeline)s!).Beat(), this, Timeout.Infinite, Timeout.Infinite);
    }

    public IReadOnlyList<SecondStats> Seconds => _seconds;

    /// <summary>Each 10-second window's L1-hit p99 (µs) and sample count.</summary>
    public IReadOnlyList<(double Start, double P99Us, long Count)> L1Windows => _l1Windows;

    public double HeartbeatLateMaxMs => Clock.Milliseconds(0, Interlocked.Read(ref _lateMax));

    public long PendingWorkItemsMax => Interlocked.Read(ref _pendingMax);

    public long TotalCalls => _allCalls.TotalCount;

    public double CallPercentileMs(double percentile) => _allCalls.TotalCount == 0 ? 0 : _allCalls.GetValueAtPercentile(percentile) / 1000.0;

    public double L1HitPercentileUs(double percentile) => _allL1Hits.TotalCount == 0 ? 0 : _allL1Hits.GetValueAtPercentile(percentile) / 1000.0;

    public long L1HitCount => _allL1Hits.TotalCount;

    public void Start()
    {
        _lastBeat = Clock.Now;
        _heartbeat.Change(100, 100);
        _sampler = SampleAsync();
    }

    /// <summary>Records a completed call (successful or not); <paramref name="l1Hit"/> when it completed synchronously.</summary>
    public void RecordCall(long start, long end, bool l1Hit)
    {
        _calls.RecordValue(Math.Min(Clock.Microseconds(start, end), CallsHighest));
        if (l1Hit)
        {
            _l1Hits.RecordValue(Math.Min(Clock.Nanoseconds(start, end), L1HitsHighest));
        }
    }

    public void RecordError(ErrorKind kind)
    {
        if (kind == ErrorKind.Unexpected)
        {
            Interlocked.Increment(ref _unexpected);
        }
        else
        {
            Interlocked.Increment(ref _expected);
        }
    }

    public void RecordStale() => Interlocked.Increment(ref _stale);

    /// <summary>Stops sampling (taking a last sample) and the heartbeat.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _heartbeat.DisposeAsync();
        await _stop.CancelAsync();
        if (_sampler is not null)
        {
            await _sampler;
        }

        Sample();
        _stop.Dispose();
    }

    /// <summary>The per-second series as CSV, for the artifacts.</summary>
    public string ToCsv()
    {
        var csv = new StringBuilder("time_s,calls,p50_ms,p99_ms,max_ms,l1_hits,l1_hit_p99_us,unexpected_errors,expected_errors,stale_beyond_window,pending_work_items,threads,heartbeat_late_ms\n");
        foreach (SecondStats s in _seconds)
        {
            csv.AppendLine(string.Create(CultureInfo.InvariantCulture, $"{s.Time:0.0},{s.Calls},{s.P50Ms:0.###},{s.P99Ms:0.###},{s.MaxMs:0.###},{s.L1Hits},{s.L1HitP99Us:0.###},{s.UnexpectedErrors},{s.ExpectedErrors},{s.StaleBeyondWindow},{s.PendingWorkItems},{s.Threads},{s.HeartbeatLateMs:0.#}"));
        }

        return csv.ToString();
    }

    private static Recorder NewRecorder(long highest) =>
        HistogramFactory.With64BitBucketSize().WithValuesFrom(1).WithValuesUpTo(highest).WithPrecisionOf(3)
            .WithThreadSafeWrites().WithThreadSafeReads().Create();

    private void Beat()
    {
        long now = Clock.Now;
        long late = Math.Max(0, now - Interlocked.Exchange(ref _lastBeat, now) - HeartbeatPeriod);
        Max(ref _lateThisSecond, late);
        Max(ref _lateMax, late);
    }

    private async Task SampleAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                Sample();
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // The run is over; DisposeAsync takes the last sample.
        }
    }

    private void Sample()
    {
        HistogramBase calls = _calls.GetIntervalHistogram();
        HistogramBase hits = _l1Hits.GetIntervalHistogram();
        _allCalls.Add(calls);
        _allL1Hits.Add(hits);
        long pending = ThreadPool.PendingWorkItemCount;
        Max(ref _pendingMax, pending);

        // A heartbeat that has not run at all this second is as late as the time since its last run.
        long sinceBeat = Clock.Now - Interlocked.Read(ref _lastBeat) - HeartbeatPeriod;
        Max(ref _lateMax, sinceBeat);
        long late = Math.Max(Interlocked.Exchange(ref _lateThisSecond, 0), sinceBeat);

        _seconds.Add(new SecondStats(
            Math.Round(Clock.Seconds(Clock.Now), 1),
            calls.TotalCount,
            Percentile(calls, 50) / 1000.0,
            Percentile(calls, 99) / 1000.0,
            calls.TotalCount == 0 ? 0 : calls.GetMaxValue() / 1000.0,
            hits.TotalCount,
            Percentile(hits, 99) / 1000.0,
            Interlocked.Exchange(ref _unexpected, 0),
            Interlocked.Exchange(ref _expected, 0),
            Interlocked.Exchange(ref _stale, 0),
            pending,
            ThreadPool.ThreadCount,
            Math.Max(0, Clock.Milliseconds(0, late))));

        _window.Add(hits);
        if (++_windowSeconds == WindowSeconds)
        {
            _l1Windows.Add((_seconds[^WindowSeconds].Time - 1, Percentile(_window, 99) / 1000.0, _window.TotalCount));
            _window.Reset();
            _windowSeconds = 0;
        }
    }

    private static double Percentile(HistogramBase histogram, double percentile) =>
        histogram.TotalCount == 0 ? 0 : histogram.GetValueAtPercentile(percentile);

    private static void Max(ref long field, long value)
    {
        long current = Interlocked.Read(ref field);
        while (value > current)
        {
            long seen = Interlocked.CompareExchange(ref field, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }
}
