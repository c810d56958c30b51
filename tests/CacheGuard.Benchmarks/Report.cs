using System.Globalization;
using System.Text;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace CacheGuard.Benchmarks;

/// <summary>
/// Renders the run as Markdown: BenchmarkDotNet's results in compact tables, the stampede table with Go beside it,
/// SingleFlight beside Go, and the issue's targets with the figures of this run. It states what was measured and never
/// fails the run for a timing.
/// </summary>
internal static class Report
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Render(List<Summary> summaries, List<AllocationShare>? breakdown, List<StampedeResult>? stampede, List<GoResult>? go, List<RedisThroughput>? redis, bool quick)
    {
        var md = new StringBuilder();
        md.AppendLine(Inv, $"# CacheGuard benchmark report ({(quick ? "--quick: smoke test, timings are not meaningful" : "full run")})");
        md.AppendLine();
        md.AppendLine(Inv, $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; source {SourceRevision()}; load average at the end {LoadAverage()}.");
        md.AppendLine();

        foreach (Summary summary in summaries)
        {
            md.AppendLine(Inv, $"## {summary.Title.Split('-')[0]}");
            md.AppendLine();
            md.AppendLine("| Benchmark | Mean | Ratio | Allocated | Ops/s |");
            md.AppendLine("|---|---:|---:|---:|---:|");
            BenchmarkReport? baseline = summary.Reports.FirstOrDefault(r => r.BenchmarkCase.Descriptor.Baseline);
            foreach (BenchmarkReport r in summary.Reports)
            {
                double? mean = r.ResultStatistics?.Mean;
                double? baseMean = baseline?.ResultStatistics?.Mean;
                string ratio = mean is not null && baseMean is > 0 ? (mean.Value / baseMean.Value).ToString("0.00", Inv) + "×" : "–";
                md.AppendLine(Inv, $"| {r.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo} | {Ns(mean)} | {ratio} | {Bytes(r)} | {(mean is > 0 ? (1e9 / mean.Value).ToString("N0", Inv) : "–")} |");
            }

            md.AppendLine();
        }

        if (breakdown is not null)
        {
            md.AppendLine("## Miss path: where the bytes go (one thread, distinct keys, exact per-thread allocation counts)");
            md.AppendLine();
            md.AppendLine("| Part | Bytes/op |");
            md.AppendLine("|---|---:|");
            foreach (AllocationShare share in breakdown)
            {
                md.AppendLine(Inv, $"| {share.Part.Replace("  ", "&nbsp;&nbsp;", StringComparison.Ordinal)} | {share.BytesPerOp:N1} |");
            }

            md.AppendLine();
        }

        if (stampede is not null)
        {
            md.AppendLine("## Stampede: N callers, one cold key, loader awaits 20 ms");
            md.AppendLine();
            md.AppendLine(Inv, $"Median of {stampede[0].Rounds} rounds (max in brackets). Extra = time from opening the start gate until the last caller has its value, minus the loader's own measured duration. Bytes per caller = bytes the process allocated while serving, / N.");
            md.AppendLine();
            md.AppendLine("| N | Subject | Loader calls | Loader (ms) | Last caller served (ms) | Extra (ms) | Bytes/caller |");
            md.AppendLine("|---:|---|---:|---:|---:|---:|---:|");
            foreach (StampedeResult s in stampede)
            {
                string calls = s.LoaderCallsMin == s.LoaderCallsMax ? s.LoaderCallsMin.ToString("N0", Inv) : $"{s.LoaderCallsMin:N0}–{s.LoaderCallsMax:N0}";
                md.AppendLine(Inv, $"| {s.Callers:N0} | {s.Subject} | {calls} | {s.LoaderMs:0.00} | {s.ServedMsMedian:0.00} | {s.ExtraMsMedian:+0.00;-0.00} ({s.ExtraMsMax:+0.00;-0.00}) | {s.BytesPerCaller:N0} |");
                if (s.Subject.StartsWith("IMemoryCache.GetOrCreateAsync", StringComparison.Ordinal))
                {
                    GoResult? g = go?.FirstOrDefault(x => x.Name == $"Stampede/{s.Callers}");
                    if (g is not null)
                    {
                        md.AppendLine(Inv, $"| {s.Callers:N0} | Go singleflight.Do (goroutines, same shape) | {g.LoaderCalls:N0} | – | – | {g.ExtraMsMedian:+0.00;-0.00} ({g.ExtraMsMax:+0.00;-0.00}) | {g.BytesPerCaller:N0} |");
                    }
                }
            }

            md.AppendLine();
        }

        if (go is not null)
        {
            md.AppendLine("## SingleFlight beside Go's singleflight.Do (same machine, same run)");
            md.AppendLine();
            md.AppendLine("| Case | CacheGuard SingleFlight.DoAsync | Go singleflight.Do |");
            md.AppendLine("|---|---:|---:|");
            GoRow(md, summaries, go, "uncontended", nameof(SingleFlightBenchmarks.Uncontended), "Do/uncontended");
            GoRow(md, summaries, go, "uncontended, state overload", nameof(SingleFlightBenchmarks.UncontendedState), "Do/uncontended");
            GoRow(md, summaries, go, "contended, 2 threads / goroutines, 1 key", nameof(SingleFlightBenchmarks.Contended), "Do/contended-2");
            md.AppendLine();
        }

        if (redis is not null)
        {
            md.AppendLine("## Redis: throughput at N concurrent callers, 200-byte values, one local redis-server");
            md.AppendLine();
            md.AppendLine("redis-benchmark opens N connections with one request in flight on each (-P 1); the StackExchange.Redis callers share one multiplexer. Latency: redis-benchmark's average; for the others, wall time × callers / requests.");
            md.AppendLine();
            md.AppendLine("| Callers | Subject | Op | Requests/s | vs redis-benchmark | Mean latency (µs) | Bytes/op |");
            md.AppendLine("|---:|---|---|---:|---:|---:|---:|");
            foreach (RedisThroughput r in redis)
            {
                RedisThroughput? reference = redis.FirstOrDefault(x => x.Subject.StartsWith("redis-benchmark", StringComparison.Ordinal) && x.Callers == r.Callers && x.Operation == r.Operation);
                string ratio = reference is null ? "–" : (r.OpsPerSecond / reference.OpsPerSecond).ToString("0.00", Inv) + "×";
                md.AppendLine(Inv, $"| {r.Callers} | {r.Subject} | {r.Operation} | {r.OpsPerSecond:N0} | {ratio} | {(r.MeanMicroseconds is { } us ? us.ToString("N1", Inv) : "–")} | {(r.BytesPerOp is { } b ? b.ToString("N0", Inv) : "–")} |");
            }

            md.AppendLine();
        }

        RenderTargets(md, summaries, stampede, go, redis);
        return md.ToString();
    }

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

    private static void RenderTargets(StringBuilder md, List<Summary> summaries, List<StampedeResult>? stampede, List<GoResult>? go, List<RedisThroughput>? redis)
    {
        md.AppendLine("## Targets (issue 8), judged on this run");
        md.AppendLine();
        md.AppendLine("| Target | Measured | Met? |");
        md.AppendLine("|---|---|---|");

        BenchmarkReport? raw = Find(summaries, nameof(L1HitBenchmarks.MemoryCacheTryGetValue));
        BenchmarkReport? state = Find(summaries, nameof(L1HitBenchmarks.CacheGuardState));
        if (raw?.ResultStatistics is not null && state?.ResultStatistics is not null)
        {
            double ratio = state.ResultStatistics.Mean / raw.ResultStatistics.Mean;
            long? bytes = Allocated(state);
            md.AppendLine(Inv, $"| L1 hit (state overload): 0 B and ≤ 1.5× raw TryGetValue | {ratio:0.00}× ({Ns(state.ResultStatistics.Mean)} vs {Ns(raw.ResultStatistics.Mean)}), {bytes} B | {Verdict(ratio <= 1.5 && bytes == 0)} |");
        }

        StampedeResult? cg = stampede?.FirstOrDefault(s => s.Callers == 10_000 && s.Subject == "CacheGuard GetOrLoadAsync");
        if (cg is not null)
        {
            md.AppendLine(Inv, $"| Stampede, 10,000 callers: loader once | {(cg.LoaderCallsMin == cg.LoaderCallsMax ? cg.LoaderCallsMax.ToString(Inv) : $"{cg.LoaderCallsMin}–{cg.LoaderCallsMax}")} call(s) per round | {Verdict(cg.LoaderCallsMax == 1 && cg.LoaderCallsMin == 1)} |");
            md.AppendLine(Inv, $"| Stampede, 10,000 callers: served within loader + 3 ms | median {cg.ExtraMsMedian:+0.00} ms, max {cg.ExtraMsMax:+0.00} ms | {Verdict(cg.ExtraMsMedian <= 3)}{(cg.ExtraMsMax > 3 && cg.ExtraMsMedian <= 3 ? " (median; some rounds over)" : string.Empty)} |");
            md.AppendLine(Inv, $"| Stampede, 10,000 callers: ≤ 64 B per waiting caller (no cancellable token) | {cg.BytesPerCaller:0.0} B | {Verdict(cg.BytesPerCaller <= 64)} |");
        }

        BenchmarkReport? missRaw = Find(summaries, nameof(MissThroughputBenchmarks.MemoryCacheTryGetValueAndSet));
        BenchmarkReport? miss = Find(summaries, nameof(MissThroughputBenchmarks.CacheGuardGetOrLoadAsync));
        if (missRaw?.ResultStatistics is not null && miss?.ResultStatistics is not null)
        {
            double ratio = missRaw.ResultStatistics.Mean / miss.ResultStatistics.Mean;
            long? bytes = Allocated(miss);
            md.AppendLine(Inv, $"| Miss throughput: ≥ 0.4× raw TryGetValue+Set, ≤ 400 B/op | {ratio:0.00}× ({1e9 / miss.ResultStatistics.Mean / 1e6:0.00} M vs {1e9 / missRaw.ResultStatistics.Mean / 1e6:0.00} M ops/s), {bytes} B/op | {Verdict(ratio >= 0.4 && bytes <= 400)} |");
        }

        BenchmarkReport? sf = Find(summaries, nameof(SingleFlightBenchmarks.Uncontended));
        GoResult? goDo = go?.FirstOrDefault(g => g.Name == "Do/uncontended");
        if (sf?.ResultStatistics is not null)
        {
            string goText = goDo is null ? "Go not run" : $"Go {goDo.NsPerOp:0.0} ns, {goDo.BytesPerOp} B";
            md.AppendLine(Inv, $"| Uncontended SingleFlight.DoAsync no slower than Go's singleflight.Do | {Ns(sf.ResultStatistics.Mean)}, {Allocated(sf)} B; {goText} | {(goDo is null ? "not compared" : Verdict(sf.ResultStatistics.Mean <= goDo.NsPerOp))} |");
        }

        RedisThroughput? redisGet = redis?.FirstOrDefault(r => r.Callers == 64 && r.Subject.StartsWith("RedisCache.GetAsync", StringComparison.Ordinal));
        RedisThroughput? rawGet = redis?.FirstOrDefault(r => r.Callers == 64 && r.Subject == "StackExchange.Redis, GET");
        RedisThroughput? benchGet = redis?.FirstOrDefault(r => r.Callers == 64 && r.Subject.StartsWith("redis-benchmark", StringComparison.Ordinal) && r.Operation == "GET");
        if (redisGet is not null && benchGet is not null)
        {
            double ratio = redisGet.OpsPerSecond / benchGet.OpsPerSecond;
            string plain = rawGet is null ? string.Empty : $"; plain GET through the same client {rawGet.OpsPerSecond / benchGet.OpsPerSecond:0.00}×";
            md.AppendLine(Inv, $"| Redis GET at 64 callers ≥ 1.0× redis-benchmark -c 64 -P 1 | RedisCache.GetAsync {redisGet.OpsPerSecond:N0}/s vs {benchGet.OpsPerSecond:N0}/s = {ratio:0.00}×{plain} | {Verdict(ratio >= 1.0)} |");
        }
        else
        {
            md.AppendLine("| Redis GET at 64 callers ≥ 1.0× redis-benchmark | not measured in this run (filtered out, or redis-server / redis-benchmark missing) | – |");
        }
        md.AppendLine();
    }

    private static void GoRow(StringBuilder md, List<Summary> summaries, List<GoResult> go, string label, string method, string goName)
    {
        BenchmarkReport? r = Find(summaries, method);
        GoResult? g = go.FirstOrDefault(x => x.Name == goName);
        string ours = r?.ResultStatistics is null ? "not run" : $"{Ns(r.ResultStatistics.Mean)}, {Allocated(r)} B";
        string theirs = g is null ? "not run" : $"{g.NsPerOp:0.0} ns, {g.BytesPerOp} B, {g.AllocsPerOp} alloc";
        md.AppendLine(Inv, $"| {label} | {ours} | {theirs} |");
    }

    private static BenchmarkReport? Find(List<Summary> summaries, string method) =>
        summaries.SelectMany(s => s.Reports).FirstOrDefault(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method);

    private static long? Allocated(BenchmarkReport report) => report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase);

    private static string Bytes(BenchmarkReport report) => Allocated(report) is { } b ? b.ToString("N0", Inv) + " B" : "–";

    private static string Ns(double? ns) => ns switch
    {
        null => "–",
        >= 1e6 => (ns.Value / 1e6).ToString("0.00", Inv) + " ms",
        >= 1e4 => (ns.Value / 1e3).ToString("0.00", Inv) + " µs",
        _ => ns.Value.ToString("0.0", Inv) + " ns",
    };

    private static string Verdict(bool met) => met ? "**met**" : "**missed**";
}
