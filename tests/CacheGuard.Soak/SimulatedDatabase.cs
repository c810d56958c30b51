using System.Globalization;

namespace CacheGuard.Soak;

/// <summary>The simulated database's own failure: the one exception a loader may legitimately pass to callers.</summary>
internal sealed class SimulatedDbException(string message) : Exception(message);

/// <summary>
/// The data source the fleet fronts: versioned rows in memory, with configurable latency and error rate that the
/// fault injector raises in bursts. A query reads its snapshot when it starts and answers after its latency, as a
/// remote query would. Every write increments the row's version. It records what the invariants need: per key, when
/// each version became current and when the cache call after it completed, and every loader call in progress (per
/// node and fleet-wide), which <see cref="LoadWatch"/> judges as it starts.
/// </summary>
internal sealed class SimulatedDatabase
{
    /// <summary>Write records whose cache call completed longer ago than this are pruned (keeping the heap flat).</summary>
    private static readonly long PruneHorizon = Clock.Ticks(TimeSpan.FromSeconds(120));

    private readonly DbRow[] _rows;
    private readonly Dictionary<string, DbRow> _byKey;
    private readonly Random _random;
    private readonly Lock _randomGate = new();
    private readonly SoakSettings _settings;
    private readonly string _payload;
    private long _lateLoads;
    private long _loadIds;
    private long _errorRateBits;
    private long _latencySpikeTicks;

    public SimulatedDatabase(SoakSettings settings, LoadWatch loads)
    {
        _settings = settings;
        Loads = loads;
        _random = new Random(Seeds.Derive(settings.Seed, 1));
        _payload = new string('x', 64);
        _rows = new DbRow[settings.Keys];
        _byKey = new Dictionary<string, DbRow>(settings.Keys, StringComparer.Ordinal);
        for (int i = 0; i < _rows.Length; i++)
        {
            string key = "item:" + i.ToString(CultureInfo.InvariantCulture);
            _rows[i] = new DbRow(key, i);
            _byKey.Add(key, _rows[i]);
        }

        ErrorRate = settings.DbErrorRate;
    }

    public LoadWatch Loads { get; }

    public IReadOnlyList<DbRow> Rows => _rows;

    /// <summary>The probability that a query fails now (raised by an error burst).</summary>
    public double ErrorRate
    {
        get => BitConverter.Int64BitsToDouble(Interlocked.Read(ref _errorRateBits));
        set => Interlocked.Exchange(ref _errorRateBits, BitConverter.DoubleToInt64Bits(value));
    }

    /// <summary>Every query's latency while a spike is on; <see cref="TimeSpan.Zero"/> when none is.</summary>
    public TimeSpan LatencySpike
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _latencySpikeTicks));
        set => Interlocked.Exchange(ref _latencySpikeTicks, value.Ticks);
    }

    public DbRow Row(string key) => _byKey[key];

    /// <summary>The row's current version.</summary>
    public static long CurrentVersion(DbRow row)
    {
        lock (row.Gate)
        {
            return row.Version;
        }
    }

    /// <summary>One query for one key, run by a single <c>GetOrLoadAsync</c> loader on <paramref name="node"/>.</summary>
    public async Task<Row> LoadAsync(int node, DbRow row, CancellationToken cancellationToken)
    {
        (RunningLoad load, long version) = Begin(node, row, LoadKind.Single);
        bool succeeded = false;
        using CancellationTokenRegistration registration = cancellationToken.Register(static s => ((RunningLoad)s!).Cancelled = true, load);
        try
        {
            await Task.Delay(SampleLatency(), cancellationToken);
            if (SampleError())
            {
                throw new SimulatedDbException($"simulated database error loading {row.Key}");
            }

            succeeded = true;
            return new Row(row.Key, version, _payload);
        }
        finally
        {
            End(row, load, version, succeeded);
        }
    }

    /// <summary>One query for many keys, run by a <c>GetOrLoadManyAsync</c> loader on <paramref name="node"/>.</summary>
    public async Task<IReadOnlyDictionary<string, Row>> LoadManyAsync(int node, IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        var loads = new (DbRow Row, RunningLoad Load, long Version)[keys.Count];
        for (int i = 0; i < keys.Count; i++)
        {
            DbRow row = Row(keys[i]);
            (RunningLoad load, long version) = Begin(node, row, LoadKind.Batch);
            loads[i] = (row, load, version);
        }

        bool succeeded = false;
        try
        {
            await Task.Delay(SampleLatency(), cancellationToken);
            if (SampleError())
            {
                throw new SimulatedDbException($"simulated database error loading a batch of {keys.Count}");
            }

            var found = new Dictionary<string, Row>(keys.Count, StringComparer.Ordinal);
            foreach ((DbRow row, _, long version) in loads)
            {
                found[row.Key] = new Row(row.Key, version, _payload);
            }

            succeeded = true;
            return found;
        }
        finally
        {
            foreach ((DbRow row, RunningLoad load, long version) in loads)
            {
                End(row, load, version, succeeded);
            }
        }
    }

    /// <summary>
    /// Writes the row (the caller holds its <see cref="DbRow.WriteGate"/>): its version goes up by one and the write is
    /// recorded, to be completed by <see cref="Completed"/> once the cache call after it returns.
    /// </summary>
    /// <exception cref="SimulatedDbException">An error burst failed the write (nothing changed).</exception>
    public (WriteRecord Record, Row Value) Write(int node, DbRow row, string operation)
    {
        if (SampleError())
        {
            throw new SimulatedDbException($"simulated database error writing {row.Key}");
        }

        lock (row.Gate)
        {
            long now = Clock.Now;
            row.Version++;
            var record = new WriteRecord(row.Version, now, node, operation);
            row.Writes.Add(record);
            row.LastInvalidationStart = now; // the cache call starts right after: loads running now are superseded
            row.LastInvalidationEnd = 0;
            row.LastInvalidationNode = node;
            row.Record(new KeyEvent(now, KeyEventKind.DatabaseWrite, node, row.Version, 0, LoadKind.Single, operation));
            return (record, new Row(row.Key, row.Version, _payload));
        }
    }

    /// <summary>Records that the cache call after a write returned at <paramref name="at"/>, and prunes old records.</summary>
    public static void Completed(DbRow row, WriteRecord record, long at)
    {
        lock (row.Gate)
        {
            record.CompletedAt = at;
            row.LastInvalidationEnd = at;
            row.Record(new KeyEvent(at, KeyEventKind.CacheCallDone, record.Node, record.Version, 0, LoadKind.Single, record.Operation == "set" ? "SetAsync" : "RemoveAsync"));
            while (row.Writes.Count > 1 && row.Writes[0].CompletedAt != 0 && at - row.Writes[0].CompletedAt > PruneHorizon)
            {
                row.PrunedVersion = row.Writes[0].Version;
                row.PrunedCompletedAt = row.Writes[0].CompletedAt;
                row.Writes.RemoveAt(0);
            }
        }
    }

    /// <summary>The longest load of the row that overlapped [<paramref name="from"/>, <paramref name="to"/>], in timestamp ticks.</summary>
    public static long LongestLoadWithin(DbRow row, long from, long to)
    {
        long longest = 0;
        lock (row.Gate)
        {
            foreach (CompletedLoad load in row.Recent)
            {
                if (load.End != 0 && load.Start <= to && load.End >= from)
                {
                    longest = Math.Max(longest, load.End - Math.Max(load.Start, from));
                }
            }

            foreach (RunningLoad load in row.Running)
            {
                if (load.Start <= to)
                {
                    longest = Math.Max(longest, to - Math.Max(load.Start, from));
                }
            }
        }

        return longest;
    }

    private (RunningLoad Load, long Version) Begin(int node, DbRow row, LoadKind kind)
    {
        var load = new RunningLoad(Interlocked.Increment(ref _loadIds), node, Clock.Now, kind);
        lock (row.Gate)
        {
            Loads.OnStart(row, load);
            row.Running.Add(load);
            row.Record(new KeyEvent(load.Start, KeyEventKind.LoadStart, node, row.Version, load.Id, kind, null));
            return (load, row.Version);
        }
    }

    private void End(DbRow row, RunningLoad load, long version, bool succeeded)
    {
        long now = Clock.Now;
        lock (row.Gate)
        {
            row.Running.Remove(load);
            row.Recent[row.RecentNext] = new CompletedLoad(load.Start, now, load.Node);
            row.RecentNext = (row.RecentNext + 1) % DbRow.RecentLoads;
            var end = new KeyEvent(now, succeeded ? KeyEventKind.LoadEnd : KeyEventKind.LoadFailed, load.Node, version, load.Id, load.Kind, null);
            row.Record(end);
            if (succeeded && row.Writes.Exists(w => w.Version > version && w.CompletedAt != 0))
            {
                Interlocked.Increment(ref _lateLoads);
                row.LateLoads[row.LateLoadsNext] = (new KeyEvent(load.Start, KeyEventKind.LoadStart, load.Node, version, load.Id, load.Kind, null), end);
                row.LateLoadsNext = (row.LateLoadsNext + 1) % row.LateLoads.Length;
            }
        }
    }

    /// <summary>Loads that returned a version a completed write had already replaced (the cache must discard them).</summary>
    public long LateLoads => Interlocked.Read(ref _lateLoads);

    /// <summary>The key's recent history, oldest first, one event a line: the evidence a violation's log entry carries.</summary>
    public static string History(DbRow row)
    {
        lock (row.Gate)
        {
            return HistoryHeld(row);
        }
    }

    /// <summary><see cref="History"/> for a caller that already holds <c>row.Gate</c>.</summary>
    public static string HistoryHeld(DbRow row)
    {
        var lines = new System.Text.StringBuilder();
        {
            for (int i = 0; i < DbRow.HistoryLength; i++)
            {
                KeyEvent e = row.History[(row.HistoryNext + i) % DbRow.HistoryLength];
                if (e.At == 0)
                {
                    continue;
                }

                string what = e.Kind switch
                {
                    KeyEventKind.LoadStart => $"load#{e.LoadId} ({e.LoadKind}) starts, reads v{e.Version}",
                    KeyEventKind.LoadEnd => $"load#{e.LoadId} ({e.LoadKind}) returns v{e.Version}",
                    KeyEventKind.LoadFailed => $"load#{e.LoadId} ({e.LoadKind}) fails (error or cancelled; it had read v{e.Version})",
                    KeyEventKind.DatabaseWrite => $"database write v{e.Version}, cache {e.Operation} follows",
                    _ => $"{e.Operation}(v{e.Version}) returned",
                };
                lines.Append(CultureInfo.InvariantCulture, $"      {Clock.Seconds(e.At),9:0.000}s node{e.Node} {what}\n");
            }

            foreach ((KeyEvent start, KeyEvent end) in row.LateLoads.Where(l => l.End.At != 0).OrderBy(l => l.End.At))
            {
                lines.Append(CultureInfo.InvariantCulture, $"      late load: load#{start.LoadId} ({start.LoadKind}) on node{start.Node} read v{start.Version} at {Clock.Seconds(start.At):0.000}s and returned it at {Clock.Seconds(end.At):0.000}s, after a newer write had completed\n");
            }
        }

        return lines.ToString();
    }

    private TimeSpan SampleLatency()
    {
        TimeSpan spike = LatencySpike;
        double sample;
        lock (_randomGate)
        {
            sample = _random.NextDouble();
        }

        if (spike > TimeSpan.Zero)
        {
            return spike * (0.9 + (0.2 * sample));
        }

        return _settings.DbLatencyMin + ((_settings.DbLatencyMax - _settings.DbLatencyMin) * sample);
    }

    private bool SampleError()
    {
        double rate = ErrorRate;
        if (rate <= 0)
        {
            return false;
        }

        lock (_randomGate)
        {
            return _random.NextDouble() < rate;
        }
    }
}
