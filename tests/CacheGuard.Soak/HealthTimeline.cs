namespace CacheGuard.Soak;

/// <summary>What a Redis fault can disturb, which decides which invariant window applies while it lasts.</summary>
[Flags]
internal enum Disturbs
{
    None = 0,

    /// <summary>Backplane messages may be late or lost: staleness is bounded by the L1 lifetime, not by propagation.</summary>
    Backplane = 1,

    /// <summary>Lock state may be lost or unreachable: nodes load without it, so fleet-wide overlaps are allowed.</summary>
    Lock = 2,

    /// <summary>The database is slow or failing: loads (this node's, or the lock owner's it waits for) take longer or fail.</summary>
    Database = 4,
}

/// <summary>
/// When Redis was unhealthy: each scheduled fault opens a window at its start and closes it at its end plus
/// <see cref="SoakSettings.Settle"/> (a window still open reaches to "now"); a node reporting Redis trouble on its own
/// opens an unscheduled one (<see cref="ReportTrouble"/>). The invariant checks ask whether an interval touches a
/// window; the stall measurement asks when Redis last answered again after a scheduled fault.
/// </summary>
internal sealed class HealthTimeline(TimeSpan settle, TimeSpan lookback)
{
    private readonly Lock _gate = new();
    private readonly List<Window> _windows = [];
    private readonly List<long> _recoveries = [];
    private readonly long _settleTicks = Clock.Ticks(settle);
    private readonly long _troubleLookback = Clock.Ticks(lookback);
    private Window? _trouble;
    private long _unscheduledTrouble;

    /// <summary>Trouble events nodes reported outside every scheduled fault window (and its settle time).</summary>
    public long UnscheduledTrouble => Interlocked.Read(ref _unscheduledTrouble);

    /// <summary>
    /// A node reported that it could not use Redis at <paramref name="at"/> (a timeout or failure that began up to the
    /// lookback earlier). Opens, or extends, an unscheduled window disturbing the backplane and the lock: the cache is
    /// judged under the conditions it met, and the report says how often this happened outside scheduled faults.
    /// </summary>
    public void ReportTrouble(long at, string what)
    {
        lock (_gate)
        {
            bool scheduled = _windows.Exists(w => w.Scheduled && w.Start <= at && w.End >= at);
            if (!scheduled)
            {
                _unscheduledTrouble++;
            }

            if (_trouble is not null && _trouble.End >= at - _troubleLookback)
            {
                _trouble.End = Math.Max(_trouble.End, at + _settleTicks);
                return;
            }

            _trouble = new Window("reported by a node: " + what, at - _troubleLookback, Disturbs.Backplane | Disturbs.Lock, scheduled: false)
            {
                End = at + _settleTicks,
                FaultEnd = 0,
            };
            _windows.Add(_trouble);
        }
    }

    /// <summary>Opens a window at <paramref name="start"/>; close it with <see cref="Close"/>.</summary>
    public Window Open(string what, long start, Disturbs disturbs)
    {
        var window = new Window(what, start, disturbs, scheduled: true);
        lock (_gate)
        {
            _windows.Add(window);
        }

        return window;
    }

    /// <summary>
    /// Closes a window: the fault ended at <paramref name="end"/> (Redis answers again); the window lasts
    /// <see cref="SoakSettings.Settle"/> longer. With <paramref name="recovery"/>, <paramref name="end"/> is also a
    /// moment Redis came back, from which stalls are measured.
    /// </summary>
    public void Close(Window window, long end, bool recovery, bool settle = true)
    {
        lock (_gate)
        {
            window.End = settle ? end + _settleTicks : end;
            window.FaultEnd = end;
            if (recovery)
            {
                _recoveries.Add(end);
            }
        }
    }

    /// <summary>Whether [<paramref name="from"/>, <paramref name="to"/>] touches a window that disturbs <paramref name="what"/>.</summary>
    public bool Disturbed(Disturbs what, long from, long to)
    {
        lock (_gate)
        {
            foreach (Window window in _windows)
            {
                if ((window.Disturbs & what) != 0 && window.Start <= to && window.End >= from)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>
    /// The latest moment a fault that disturbs <paramref name="what"/> and touches [<paramref name="from"/>,
    /// <paramref name="to"/>] ended (Redis answered again), capped at <paramref name="to"/> for a fault still going on; or null.
    /// </summary>
    public long? LatestFaultEnd(Disturbs what, long from, long to)
    {
        long? latest = null;
        lock (_gate)
        {
            foreach (Window window in _windows)
            {
                if ((window.Disturbs & what) != 0 && window.Start <= to && window.End >= from)
                {
                    long faultEnd = window.FaultEnd == 0 ? window.End - _settleTicks : window.FaultEnd; // 0: a node's report of trouble
                    long end = Math.Min(faultEnd, to);
                    latest = latest is null || end > latest ? end : latest;
                }
            }
        }

        return latest;
    }

    /// <summary>The latest moment Redis answered again at or before <paramref name="at"/>, or null.</summary>
    public long? LastRecoveryBefore(long at)
    {
        long? found = null;
        lock (_gate)
        {
            foreach (long recovery in _recoveries)
            {
                if (recovery <= at && (found is null || recovery > found))
                {
                    found = recovery;
                }
            }
        }

        return found;
    }

    /// <summary>
    /// Whether a scheduled fault that disturbs <paramref name="what"/> started after <paramref name="after"/> and at or
    /// before <paramref name="to"/>: a call that overlaps it waits on that fault, not on the recovery before it.
    /// </summary>
    public bool FaultStartedWithin(Disturbs what, long after, long to)
    {
        lock (_gate)
        {
            return _windows.Exists(w => w.Scheduled && (w.Disturbs & what) != 0 && w.Start > after && w.Start <= to);
        }
    }

    /// <summary>The end of the last fault (without settle), or null when there was none.</summary>
    public long? LastFaultEnd()
    {
        lock (_gate)
        {
            return _windows.Exists(w => w.Scheduled) ? _windows.Where(w => w.Scheduled).Max(w => w.FaultEnd) : null;
        }
    }

    public sealed class Window(string what, long start, Disturbs disturbs, bool scheduled)
    {
        /// <summary>Whether the fault injector opened it (rather than a node's report of trouble).</summary>
        public bool Scheduled { get; } = scheduled;

        public string What { get; } = what;

        public long Start { get; } = start;

        public Disturbs Disturbs { get; } = disturbs;

        /// <summary>The end including settle; <see cref="long.MaxValue"/> while the fault lasts.</summary>
        public long End { get; set; } = long.MaxValue;

        /// <summary>When the fault itself ended; <see cref="long.MaxValue"/> while it lasts.</summary>
        public long FaultEnd { get; set; } = long.MaxValue;
    }
}
