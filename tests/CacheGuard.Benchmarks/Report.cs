using System.Globalization;
using System.Text;
using BenchmarkDotNet.Reports;

namespace CacheGuard.Benchmarks;

/// <summary>
/// Renders a run as Markdown: the settings, one table per scenario with its chart beside it (CacheGuard, the peers
/// and the raw baseline in the same run), SingleFlight beside Go, and the targets of issue 14 judged on this run
/// (<see cref="ReportTargets"/>). It states what was measured and never fails the run for a timing.
/// </summary>
internal static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Render(SuiteResults r)
    {
        var md = new StringBuilder();
        md.AppendLine(Inv, $"_{(r.Quick ? "`--quick` smoke run: tiny counts, the timings mean nothing" : "Full run")}{(r.Filtered ? " of the parts and rows `--filter` selected" : string.Empty)}; {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; source {SourceRevision()}; load average at the end {LoadAverage()}; the run took {r.Elapsed.TotalMinutes:0.0} min._");
        md.AppendLine();
        md.AppendLine("### Settings");
        md.AppendLine();
        foreach (string line in Peers.Settings)
        {
            md.AppendLine("- " + line);
        }

        md.AppendLine();
        L1Hit(md, r);
        Stampede(md, r);
        Miss(md, r);
        Redis(md, r);
        SingleFlight(md, r);
        ReportTargets.Render(md, r);
        return md.ToString();
    }

    private static void L1Hit(StringBuilder md, SuiteResults r)
    {
        if (r.Mean(nameof(L1HitBenchmarks.Raw_Product)) is null)
        {
            return;
        }

        md.AppendLine("### L1 hit");
        md.AppendLine();
        md.AppendLine("One cached key per value type, read through each library's read-through call; the ratio is against `MemoryCache.TryGetValue` of the same type. \"Same instance\": the hit returns the object that was cached (for the struct: an equal value), checked in the host process.");
        md.AppendLine();
        md.AppendLine("![L1 hit, ns per call](images/l1-hit.png)");
        md.AppendLine();
        md.AppendLine("| Value type | Library | Mean | × raw `TryGetValue` | Allocated | Same instance |");
        md.AppendLine("|---|---|---:|---:|---:|---|");
        foreach (string type in L1HitBenchmarks.Types)
        {
            double? raw = r.Mean("Raw_" + type);
            foreach (string library in new[] { "Raw", Library.CacheGuard, Library.Hybrid, Library.Fusion })
            {
                string method = library + "_" + type;
                if (r.Mean(method) is not { } mean)
                {
                    continue;
                }

                string same = r.L1SameInstance?.TryGetValue(method, out bool s) == true ? (s ? "yes" : "**no (a copy)**") : "–";
                md.AppendLine(Inv, $"| {type} | {(library == "Raw" ? "raw `TryGetValue`" : library)} | {Ns(mean)} | {Ratio(mean, raw)} | {Bytes(r.Allocated(method))} | {same} |");
            }
        }

        md.AppendLine();
    }

    private static void Stampede(StringBuilder md, SuiteResults r)
    {
        if (r.Stampede is not { Count: > 0 } stampede)
        {
            return;
        }

        md.AppendLine("### Stampede: N callers, one cold key, the loader awaits 20 ms");
        md.AppendLine();
        md.AppendLine("Parked: N `async` callers wait on a start gate and are released together. Loop: one loop issues the N calls, then awaits them. Overhead = time from the release (or the loop's start) until the last caller has its value, minus the loader's own measured duration; median of the rounds, worst in brackets. Bytes per caller = what the process allocated meanwhile, / N (parked callers' own frames exist before the gate opens and are not counted). The raw baseline is naive cache-aside: every caller checks `MemoryCache`, misses and loads.");
        md.AppendLine();
        md.AppendLine("![Stampede overhead at 10,000 parked callers](images/stampede.png) ![Stampede overhead against caller count](images/stampede-callers.png)");
        md.AppendLine();
        md.AppendLine("| Callers | N | Subject | Loads executed | Overhead (ms) | Bytes/caller |");
        md.AppendLine("|---|---:|---|---:|---:|---:|");
        foreach (StampedeResult s in stampede)
        {
            string calls = s.LoaderCallsMin == s.LoaderCallsMax ? s.LoaderCallsMin.ToString("N0", Inv) : $"{s.LoaderCallsMin:N0}–{s.LoaderCallsMax:N0}";
            md.AppendLine(Inv, $"| {s.Mode.ToString().ToLowerInvariant()} | {s.Callers:N0} | {s.Subject} | {calls} | {s.ExtraMsMedian:+0.00;-0.00} ({s.ExtraMsMax:+0.00;-0.00}) | {s.BytesPerCaller:N0} |");
            GoResult? g = s.Mode == StampedeMode.Parked && s.Subject == Benchmarks.Stampede.NaiveSubject ? r.Go?.FirstOrDefault(x => x.Name == $"Stampede/{s.Callers}") : null;
            if (g is not null)
            {
                md.AppendLine(Inv, $"| goroutines | {s.Callers:N0} | Go `singleflight.Do`, same shape | {g.LoaderCalls:N0} | {g.ExtraMsMedian:+0.00;-0.00} ({g.ExtraMsMax:+0.00;-0.00}) | {g.BytesPerCaller:N0} |");
            }
        }

        md.AppendLine();
    }

    private static void Miss(StringBuilder md, SuiteResults r)
    {
        if (r.PerKey(nameof(MissThroughputBenchmarks.Raw_Miss)) is not { } raw)
        {
            return;
        }

        md.AppendLine(Inv, $"### Miss throughput: {MissThroughputBenchmarks.KeyCount:N0} distinct keys, {MissThroughputBenchmarks.Workers} workers, synchronous loader");
        md.AppendLine();
        md.AppendLine("Each key loaded once into a fresh cache; the raw baseline is `MemoryCache.TryGetValue` + `Set`. Bytes: everything allocated per key, the value itself excepted (one shared instance).");
        md.AppendLine();
        md.AppendLine("![Miss throughput](images/miss.png)");
        md.AppendLine();
        md.AppendLine("| Library | ns per key | M keys/s | × raw | Allocated per key |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        foreach (string library in new[] { "Raw", "BareSingleFlight", Library.CacheGuard, Library.Hybrid, Library.Fusion })
        {
            if (r.PerKey(library + "_Miss") is { } key)
            {
                string name = library switch
                {
                    "Raw" => "raw: `TryGetValue` + `Set`",
                    "BareSingleFlight" => "reference: raw + a bare singleflight (no versions, timeouts, fail-safe)",
                    _ => library,
                };
                md.AppendLine(Inv, $"| {name} | {key.Ns:0.0} | {1e3 / key.Ns:0.00} | {raw.Ns / key.Ns:0.00}× | {key.Bytes:N0} B |");
            }
        }

        md.AppendLine();
    }

    private static void Redis(StringBuilder md, SuiteResults r)
    {
        if (r.Redis is not { } redis)
        {
            return;
        }

        if (redis.Throughput.Count > 0)
        {
            md.AppendLine("### Redis client throughput beside redis-benchmark");
            md.AppendLine();
            md.AppendLine("The client under CacheGuard.Redis: Microsoft's `RedisCache.GetAsync` over StackExchange.Redis (one multiplexed connection, N concurrent callers), beside `redis-benchmark -P 1` sending the same `HMGET` over N connections with one request in flight on each. One key, the same value; median of the rounds.");
            md.AppendLine();
            md.AppendLine("| Callers | Client | Requests/s | × redis-benchmark |");
            md.AppendLine("|---:|---|---:|---:|");
            foreach (ThroughputResult t in redis.Throughput)
            {
                ThroughputResult? tool = redis.Throughput.FirstOrDefault(x => x.Client == RedisThroughput.BenchmarkClient && x.Callers == t.Callers);
                string rate = double.IsNaN(t.OpsPerSecond) ? "– (" + t.Note + ")" : t.OpsPerSecond.ToString("N0", Inv);
                string ratio = tool is null || double.IsNaN(tool.OpsPerSecond) ? "–" : Ratio(t.OpsPerSecond, tool.OpsPerSecond);
                md.AppendLine(Inv, $"| {t.Callers} | {t.Client} | {rate} | {ratio} |");
            }

            md.AppendLine();
        }

        if (redis.L2Hits.Count > 0)
        {
            md.AppendLine("### L2 hit over Microsoft's RedisCache (one local redis-server)");
            md.AppendLine();
            md.AppendLine(Inv, $"Every call skips L1 and reads a value the library stored itself; 64 callers each read their own key. Median of {redis.L2Hits[0].Rounds} rounds (libraries in rotating order). Bytes: everything the process allocated, / hits. Redis commands: `INFO commandstats` delta / hits. Raw: `RedisCache.GetAsync` + `JsonSerializer.Deserialize`.");
            md.AppendLine();
            md.AppendLine("![L2 hit throughput](images/l2-hit.png)");
            md.AppendLine();
            md.AppendLine("| Callers | Library | Hits/s | × raw | Bytes/hit | vs raw | Redis commands/hit | Errors |");
            md.AppendLine("|---:|---|---:|---:|---:|---:|---|---:|");
            foreach (L2HitResult h in redis.L2Hits)
            {
                L2HitResult? raw = redis.L2Hits.FirstOrDefault(x => x.Library == Library.Raw && x.Callers == h.Callers);
                string delta = raw is null || h.Library == Library.Raw ? "–" : (h.BytesPerOp - raw.BytesPerOp).ToString("+#,0;-#,0", Inv) + " B";
                md.AppendLine(Inv, $"| {h.Callers} | {h.Library} | {h.OpsPerSecond:N0} | {Ratio(h.OpsPerSecond, raw?.OpsPerSecond)} | {h.BytesPerOp:N0} | {delta} | {h.CommandsPerOp:0.00}: {h.CommandMix} | {Errors(h.Errors, h.FirstError)} |");
            }

            md.AppendLine();
        }

        if (redis.Batches.Count > 0)
        {
            md.AppendLine(Inv, $"### Cold batch of {RedisScenarios.BatchKeys} keys");
            md.AppendLine();
            md.AppendLine(Inv, $"Keys no level has. CacheGuard: `GetOrLoadManyAsync` with one batch loader. The peers and raw cache-aside (over RedisCache): their per-key call for every key, awaited together (`Task.WhenAll`). The loader stands for one database round trip: it awaits {RedisScenarios.BatchLoaderTime.TotalMilliseconds:0} ms per call, however many keys it gets. Median of {redis.Batches[0].Rounds} rounds.");
            md.AppendLine();
            md.AppendLine("![Cold batch](images/cold-batch.png)");
            md.AppendLine();
            md.AppendLine("| Library | Time per batch | Loader calls | Redis commands | Allocated per batch | Errors |");
            md.AppendLine("|---|---:|---:|---|---:|---:|");
            foreach (BatchResult b in redis.Batches)
            {
                md.AppendLine(Inv, $"| {b.Library} | {b.MsMedian:0.00} ms | {b.LoaderCallsPerBatch:0} | {b.CommandsPerBatch:0}: {b.CommandMix} | {b.BytesPerBatch / 1024:N0} KB | {Errors(b.Errors, b.FirstError)} |");
            }

            md.AppendLine();
        }

        if (redis.Outages.Count > 0)
        {
            md.AppendLine("### Redis outage");
            md.AppendLine();
            md.AppendLine("All libraries connected and warm; redis-server is killed; each library (in parallel, same outage) runs sequential misses on new keys with a synchronous loader, bounded in count and time; errors are exceptions that reached the caller. Then the server is started again (empty), and each library writes a new key every 100 ms until one is in Redis: the time from the restart until then. Last column: keys written during the outage that reached Redis afterwards.");
            md.AppendLine();
            md.AppendLine("![Redis outage](images/outage.png)");
            md.AppendLine();
            md.AppendLine("| Library | Misses | Time per miss: median (max) | Errors to callers | Until a write reaches Redis again | Outage writes that landed later |");
            md.AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach (OutageResult o in redis.Outages)
            {
                string recovery = o.RecoveryMs is { } ms ? $"{ms / 1000:0.00} s" : $"not within {o.RecoveryLimitMs / 1000:0} s";
                md.AppendLine(Inv, $"| {o.Library} | {o.Misses} | {o.MissMsMedian:0.0} ms ({o.MissMsMax:0.0}) | {Errors(o.Errors, o.FirstError)} | {recovery} | {o.OutageWritesLanded} of {o.Misses} |");
            }

            md.AppendLine();
        }

        if (redis.ThreeNodes.Count > 0)
        {
            ThreeNodeResult first = redis.ThreeNodes[0];
            md.AppendLine("### Three nodes, one cold key");
            md.AppendLine();
            md.AppendLine(Inv, $"Three service providers (each its own L1 and Redis connections) over the same Redis; {first.CallersPerNode} callers per node parked on one gate and released together; the loader awaits {RedisScenarios.NodeLoaderTime.TotalMilliseconds:0} ms. {first.Rounds} rounds, a new key each.");
            md.AppendLine();
            md.AppendLine("![Three nodes](images/three-nodes.png)");
            md.AppendLine();
            md.AppendLine("| Library | Lock | Loads executed (min–max) | Time to serve all: median (max) | Errors |");
            md.AppendLine("|---|---|---:|---:|---:|");
            foreach (ThreeNodeResult t in redis.ThreeNodes)
            {
                string loads = t.LoadsMin == t.LoadsMax ? t.LoadsMin.ToString(Inv) : $"{t.LoadsMin}–{t.LoadsMax}";
                md.AppendLine(Inv, $"| {t.Library} | {t.Variant} | {loads} | {t.ServeMsMedian:0.0} ms ({t.ServeMsMax:0.0}) | {Errors(t.Errors, t.FirstError)} |");
            }

            md.AppendLine();
        }
    }

    private static void SingleFlight(StringBuilder md, SuiteResults r)
    {
        if (r.Mean(nameof(SingleFlightBenchmarks.Uncontended)) is null)
        {
            return;
        }

        md.AppendLine("### SingleFlight beside Go's singleflight.Do");
        md.AppendLine();
        md.AppendLine("| Case | CacheGuard `SingleFlight.DoAsync` | Go `singleflight.Do` |");
        md.AppendLine("|---|---:|---:|");
        foreach ((string label, string method, string goName) in new[]
        {
            ("uncontended", nameof(SingleFlightBenchmarks.Uncontended), "Do/uncontended"),
            ("uncontended, state overload", nameof(SingleFlightBenchmarks.UncontendedState), "Do/uncontended"),
            ("contended, 2 threads / goroutines, 1 key", nameof(SingleFlightBenchmarks.Contended), "Do/contended-2"),
        })
        {
            GoResult? g = r.Go?.FirstOrDefault(x => x.Name == goName);
            string theirs = g is null ? "not run (Go missing)" : $"{g.NsPerOp:0.0} ns, {g.BytesPerOp} B";
            md.AppendLine(Inv, $"| {label} | {Ns(r.Mean(method))}, {Bytes(r.Allocated(method))} | {theirs} |");
        }

        md.AppendLine();
    }

    public static List<string> Failures(List<Summary> summaries)
    {
        var failures = new List<string>();
        foreach (Summary summary in summaries)
        {
            if (summary.HasCriticalValidationErrors)
            {
                failures.AddRange(summary.ValidationErrors.Select(e => e.Message));
            }

            failures.AddRange(summary.Reports.Where(r => !r.Success || r.ResultStatistics is null).Select(r => r.BenchmarkCase.DisplayInfo + " produced no result"));
            if (summary.Reports.Length == 0 && !summary.HasCriticalValidationErrors)
            {
                failures.Add(summary.Title + " ran no benchmark");
            }
        }

        return failures;
    }

    internal static string Ns(double? ns) => ns switch
    {
        null => "–",
        >= 1e6 => (ns.Value / 1e6).ToString("0.00", Inv) + " ms",
        >= 1e4 => (ns.Value / 1e3).ToString("0.00", Inv) + " µs",
        _ => ns.Value.ToString("0.0", Inv) + " ns",
    };

    internal static string Bytes(long? bytes) => bytes is { } b ? b.ToString("N0", Inv) + " B" : "–";

    internal static string Ratio(double value, double? baseline) => baseline is > 0 ? (value / baseline.Value).ToString("0.00", Inv) + "×" : "–";

    private static string Errors(long count, string? first) =>
        count == 0 ? "0" : $"{count} ({(first is null ? string.Empty : first.Length > 80 ? first[..80] + "…" : first).Replace("|", "/", StringComparison.Ordinal)})";

    /// <summary>The 1/5/15-minute load averages: above the core count, other work shared the cores with this run.</summary>
    private static string LoadAverage()
    {
        const string Path = "/proc/loadavg";
        return File.Exists(Path) ? string.Join(' ', File.ReadAllText(Path).Split(' ').Take(3)) : "unknown";
    }

    /// <summary>The commit measured, and whether src/ differed from it: numbers belong to a version of the code.</summary>
    private static string SourceRevision()
    {
        try
        {
            string head = Git("rev-parse --short HEAD");
            string dirty = Git("status --porcelain -- src");
            return head.Length == 0 ? "unknown (no git)" : head + (dirty.Length == 0 ? string.Empty : " + uncommitted changes in src/");
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown (no git)";
        }

        static string Git(string arguments)
        {
            var start = new System.Diagnostics.ProcessStartInfo("git", arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using System.Diagnostics.Process git = System.Diagnostics.Process.Start(start)!;
            string output = git.StandardOutput.ReadToEnd().Trim();
            git.WaitForExit();
            return git.ExitCode == 0 ? output : string.Empty;
        }
    }
}
