using System.Diagnostics;
using System.Globalization;

namespace CacheGuard.Soak;

/// <summary>
/// The mixed workload: each node runs <see cref="SoakSettings.WorkersPerNode"/> closed-loop workers, paced so the
/// fleet makes at most <see cref="SoakSettings.Rate"/> calls a second. Keys are Zipf-distributed. About 90 % of calls
/// read (<c>GetOrLoadAsync</c> 72 %, <c>GetOrLoadManyAsync</c> 9 %, <c>TryGetAsync</c> 9 %; 5 % of reads carry a
/// token that cancels within 20 ms); the rest write the database row then call <c>SetAsync</c> or <c>RemoveAsync</c>
/// on the writing node (4.7 % each), or <c>RemoveByTagAsync</c> (0.6 %). Each worker's operation sequence comes from
/// the run's seed. Every call goes through the invariant checks in <c>Workload.Calls.cs</c>.
/// </summary>
internal sealed partial class Workload(
    SoakSettings settings,
    IReadOnlyList<SoakNode> nodes,
    SimulatedDatabase db,
    ReadJudge judge,
    CallErrors errors,
    StallWatch stalls,
    Timeline timeline,
    SoakLog log)
{
    private readonly Zipf _zipf = new(settings.Keys, settings.ZipfExponent);
    private readonly CacheEntryOptions?[] _groupOptions = CreateGroupOptions(settings.Groups);
    private readonly string[] _groupTags = CreateGroupTags(settings.Groups);
    private volatile bool _writesFrozen;
    private int _writesInFlight;
    private long _calls;
    private long _writes;

    /// <summary>Every call made, including the convergence sweeps' reads (the summary's N).</summary>
    public long Calls => Interlocked.Read(ref _calls);

    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>Runs every node's workers until <paramref name="stop"/> fires.</summary>
    public Task RunAsync(CancellationToken stop)
    {
        var workers = new List<Task>();
        int total = nodes.Count * settings.WorkersPerNode;
        long interval = Stopwatch.Frequency * total / settings.Rate;
        foreach (SoakNode node in nodes)
        {
            for (int w = 0; w < settings.WorkersPerNode; w++)
            {
                var random = new Random(Seeds.Derive(settings.Seed, 100 + (node.Id * 1000) + w));
                workers.Add(Task.Run(() => WorkAsync(node, random, interval, stop), CancellationToken.None));
            }
        }

        return Task.WhenAll(workers);
    }

    /// <summary>
    /// Waits until every node reaches Redis and hears the backplane: each node in turn writes a readiness key, and
    /// every other node must serve the new version within 2 s (from the second round on, their L1 holds the previous
    /// version for 5 s, so only an eviction over the backplane can make it appear in time). Warms up the JIT too.
    /// </summary>
    /// <exception cref="TimeoutException">The fleet was not ready within 60 s.</exception>
    public async Task WaitUntilReadyAsync()
    {
        const string key = "ready";
        var waited = Stopwatch.StartNew();
        long version = 0;
        foreach (SoakNode writer in nodes)
        {
            while (true)
            {
                version++;
                await writer.Cache.SetAsync(key, new Row(key, version, string.Empty));
                var round = Stopwatch.StartNew();
                bool seen = false;
                while (!seen && round.Elapsed < TimeSpan.FromSeconds(2))
                {
                    seen = true;
                    foreach (SoakNode reader in nodes)
                    {
                        CacheLookup<Row> lookup = await reader.Cache.TryGetAsync<Row>(key);
                        seen &= lookup.Found && lookup.Value!.Version == version;
                    }

                    if (!seen)
                    {
                        await Task.Delay(10);
                    }
                }

                if (seen)
                {
                    break;
                }

                if (waited.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new TimeoutException($"The fleet did not become ready within 60 s: node{writer.Id}'s write of the readiness key was not seen by every node within 2 s.");
                }

                log.Write($"readiness: node{writer.Id}'s write (v{version}) not seen by every node within 2 s; trying again", console: true);
            }
        }
    }

    /// <summary>Stops new writes and returns once the writes in flight have completed.</summary>
    public async Task FreezeWritesAsync()
    {
        _writesFrozen = true;
        var waited = Stopwatch.StartNew();
        while (Volatile.Read(ref _writesInFlight) > 0)
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"{Volatile.Read(ref _writesInFlight)} writes were still in flight 30 s after writes were frozen.");
            }

            await Task.Delay(5);
        }
    }

    /// <summary>
    /// One convergence sweep: every node reads every key any node ever read (concurrently per node). Returns the
    /// (node, key, served version, database version) of every read that did not serve the current version.
    /// </summary>
    public async Task<List<(int Node, string Key, long? Served, long Current, bool Hit)>> SweepAsync()
    {
        var sweeps = nodes.Select(node => Task.Run(async () =>
        {
            var wrong = new List<(int, string, long?, long, bool)>();
            foreach (DbRow row in db.Rows)
            {
                if (!row.EverRead)
                {
                    continue;
                }

                (Row? served, bool hit) = await ReadOneAsync(node, row, cancelAfter: null, "sweep read");
                long current = SimulatedDatabase.CurrentVersion(row);
                if (served is null || served.Version != current)
                {
                    wrong.Add((node.Id, row.Key, served?.Version, current, hit));
                }
            }

            return wrong;
        }));
        List<(int, string, long?, long, bool)>[] results = await Task.WhenAll(sweeps);
        return results.SelectMany(r => r).ToList();
    }

    private async Task WorkAsync(SoakNode node, Random random, long interval, CancellationToken stop)
    {
        long next = Clock.Now + (long)(random.NextDouble() * interval);
        while (!stop.IsCancellationRequested)
        {
            long now = Clock.Now;
            if (now - next > Stopwatch.Frequency)
            {
                next = now; // more than a second behind (a slow phase): don't burst to catch up
            }

            if (next > now)
            {
                int ms = (int)Clock.Milliseconds(now, next);
                if (ms >= 1)
                {
                    try
                    {
                        await Task.Delay(ms, stop);
                    }
                    catch (OperationCanceledException) when (stop.IsCancellationRequested)
                    {
                        return;
                    }
                }
            }

            next += interval;
            await RunOneAsync(node, random);
        }
    }

    private async Task RunOneAsync(SoakNode node, Random random)
    {
        double op = random.NextDouble();
        TimeSpan? cancelAfter = random.NextDouble() < 0.05 ? TimeSpan.FromMilliseconds(random.Next(0, 20)) : null;
        if (op < 0.72 || (op >= 0.90 && _writesFrozen))
        {
            await ReadOneAsync(node, PickRow(random), cancelAfter, "GetOrLoadAsync");
        }
        else if (op < 0.81)
        {
            await ReadManyAsync(node, PickBatch(random), cancelAfter);
        }
        else if (op < 0.90)
        {
            await TryGetAsync(node, PickRow(random), cancelAfter);
        }
        else if (op < 0.947)
        {
            await WriteAsync(node, PickRow(random), remove: false);
        }
        else if (op < 0.994)
        {
            await WriteAsync(node, PickRow(random), remove: true);
        }
        else
        {
            await RemoveByTagAsync(node, _groupTags[random.Next(0, settings.Groups / 2)]);
        }
    }

    private DbRow PickRow(Random random) => db.Rows[_zipf.Next(random)];

    /// <summary>A Zipf-drawn key and up to five more of its group (same options, so the batch is consistent).</summary>
    private List<DbRow> PickBatch(Random random)
    {
        DbRow first = PickRow(random);
        int size = random.Next(2, 7);
        var batch = new List<DbRow>(size) { first };
        for (int i = 1; i < size; i++)
        {
            int index = first.Index + (i * settings.Groups * (1 + random.Next(0, 8)));
            if (index < db.Rows.Count && !batch.Contains(db.Rows[index]))
            {
                batch.Add(db.Rows[index]);
            }
        }

        return batch;
    }

    private CacheEntryOptions? OptionsFor(DbRow row) => _groupOptions[row.Index % settings.Groups];

    /// <summary>The first half of the groups carry a tag (tagged entries take CacheGuard's checked-item path); the rest are plain.</summary>
    private static CacheEntryOptions?[] CreateGroupOptions(int groups)
    {
        var options = new CacheEntryOptions?[groups];
        for (int g = 0; g < groups / 2; g++)
        {
            options[g] = new CacheEntryOptions { Tags = [TagOf(g)] };
        }

        return options;
    }

    private static string[] CreateGroupTags(int groups) => Enumerable.Range(0, groups).Select(TagOf).ToArray();

    private static string TagOf(int group) => "group:" + group.ToString(CultureInfo.InvariantCulture);
}
