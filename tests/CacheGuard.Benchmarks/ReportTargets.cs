using System.Globalization;
using System.Text;

namespace CacheGuard.Benchmarks;

/// <summary>
/// The targets of issue 14, part 2, judged on one run (every ratio within the run): met or missed, with the ratio.
/// A target whose part did not run says so. Never fails the run.
/// </summary>
internal static class ReportTargets
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Render(StringBuilder md, SuiteResults r)
    {
        var rows = new List<(string Target, string Measured, bool? Met)>();
        L1(r, rows);
        Stampede(r, rows);
        Miss(r, rows);
        L2(r, rows);
        Throughput(r, rows);

        md.AppendLine("### Targets (issues 12 and 14), judged on this run");
        md.AppendLine();
        if (r.Quick)
        {
            md.AppendLine("_`--quick`: counts are tiny and the timings mean nothing; the verdicts below only exercise the report._");
            md.AppendLine();
        }

        md.AppendLine("| Target | Measured | |");
        md.AppendLine("|---|---|---|");
        foreach ((string target, string measured, bool? met) in rows)
        {
            md.AppendLine(Inv, $"| {target} | {measured} | {(met is null ? "not measured" : met.Value ? "met" : "**missed**")} |");
        }

        md.AppendLine();
        List<string> missed = rows.Where(x => x.Met == false).Select(x => $"{x.Target}: {x.Measured}").ToList();
        md.AppendLine(missed.Count == 0 ? "Every measured target is met on this run." : $"Missed on this run ({missed.Count} of {rows.Count(x => x.Met is not null)}):");
        foreach (string line in missed)
        {
            md.AppendLine("- " + line);
        }

        md.AppendLine();
    }

    /// <summary>Issue 12: the Redis client at least as fast as redis-benchmark -P 1 at 16 and 64 callers.</summary>
    private static void Throughput(SuiteResults r, List<(string, string, bool?)> rows)
    {
        if (r.Redis is not { Throughput.Count: > 0 } redis)
        {
            return;
        }

        foreach (int callers in new[] { 16, 64 })
        {
            ThroughputResult? client = redis.Throughput.FirstOrDefault(t => t.Client == RedisThroughput.RedisCacheClient && t.Callers == callers);
            ThroughputResult? tool = redis.Throughput.FirstOrDefault(t => t.Client == RedisThroughput.BenchmarkClient && t.Callers == callers);
            if (client is null || tool is null || double.IsNaN(tool.OpsPerSecond))
            {
                rows.Add(($"Redis client, {callers} callers: ≥ 1.0× redis-benchmark -P 1", "not measured", null));
                continue;
            }

            double ratio = client.OpsPerSecond / tool.OpsPerSecond;
            rows.Add(($"Redis client, {callers} callers: ≥ 1.0× redis-benchmark -P 1", $"{ratio:0.00}× ({client.OpsPerSecond:N0}/s vs {tool.OpsPerSecond:N0}/s)", ratio >= 1.0));
        }
    }

    private static void L1(SuiteResults r, List<(string, string, bool?)> rows)
    {
        foreach (string type in L1HitBenchmarks.Types)
        {
            double? raw = r.Mean("Raw_" + type);
            double? cg = r.Mean("CacheGuard_" + type);
            if (raw is null || cg is null)
            {
                continue;
            }

            long? bytes = r.Allocated("CacheGuard_" + type);
            double ratio = cg.Value / raw.Value;
            rows.Add(($"L1 hit, {type}: ≤ 1.3× raw `TryGetValue`, 0 B", $"{ratio:0.00}× ({Report.Ns(cg)} vs {Report.Ns(raw)}), {Report.Bytes(bytes)}", ratio <= 1.3 && bytes == 0));
            Ahead(rows, $"L1 hit, {type}: ahead of both peers", cg.Value, r.Mean("HybridCache_" + type), r.Mean("FusionCache_" + type), lowerIsBetter: true, Report.Ns);
        }
    }

    private static void Stampede(SuiteResults r, List<(string, string, bool?)> rows)
    {
        StampedeResult? Find(string subject) => r.Stampede?.FirstOrDefault(s => s.Mode == StampedeMode.Parked && s.Callers == 10_000 && s.Subject == subject);
        StampedeResult? cg = Find(Benchmarks.Stampede.CacheGuardSubject);
        StampedeResult? naive = Find(Benchmarks.Stampede.NaiveSubject);
        if (cg is null || naive is null)
        {
            rows.Add(("Stampede, 10,000 parked callers", "not run", null));
            return;
        }

        double limit = Math.Max(2.0, 1.1 * naive.ExtraMsMedian);
        rows.Add(("Stampede, 10,000 parked callers: loader once", $"{cg.LoaderCallsMin}–{cg.LoaderCallsMax} load(s) per round", cg.LoaderCallsMax == 1 && cg.LoaderCallsMin == 1));
        rows.Add((
            "Stampede, 10,000 parked callers: overhead ≤ max(2 ms, 1.1× naive cache-aside's)",
            $"{cg.ExtraMsMedian:+0.00} ms against a limit of {limit:0.00} ms (naive {naive.ExtraMsMedian:+0.00} ms) = {cg.ExtraMsMedian / limit:0.00}× the limit",
            cg.ExtraMsMedian <= limit));
        rows.Add(("Stampede, 10,000 parked callers: ≤ 32 B per caller", $"{cg.BytesPerCaller:0.0} B", cg.BytesPerCaller <= 32));
        StampedeResult? hybrid = Find("HybridCache GetOrCreateAsync");
        StampedeResult? fusion = Find("FusionCache GetOrSetAsync");
        Ahead(rows, "Stampede, 10,000 parked callers: overhead ahead of both peers", cg.ExtraMsMedian, hybrid?.ExtraMsMedian, fusion?.ExtraMsMedian, lowerIsBetter: true, v => $"{v:+0.00} ms");
        Ahead(rows, "Stampede, 10,000 parked callers: bytes per caller ahead of both peers", cg.BytesPerCaller, hybrid?.BytesPerCaller, fusion?.BytesPerCaller, lowerIsBetter: true, v => $"{v:0.0} B");
    }

    private static void Miss(SuiteResults r, List<(string, string, bool?)> rows)
    {
        (double Ns, double Bytes)? raw = r.PerKey(nameof(MissThroughputBenchmarks.Raw_Miss));
        (double Ns, double Bytes)? cg = r.PerKey(nameof(MissThroughputBenchmarks.CacheGuard_Miss));
        if (raw is null || cg is null)
        {
            rows.Add(("Miss throughput", "not run", null));
            return;
        }

        double ratio = raw.Value.Ns / cg.Value.Ns;
        string floor = r.PerKey(nameof(MissThroughputBenchmarks.BareSingleFlight_Miss)) is { } bare ? $"; a bare singleflight: {raw.Value.Ns / bare.Ns:0.00}×" : "";
        rows.Add(("Miss throughput ≥ 0.7× raw", $"{ratio:0.00}× ({1e3 / cg.Value.Ns:0.00} vs {1e3 / raw.Value.Ns:0.00} M keys/s), {cg.Value.Bytes:N0} B per key (raw {raw.Value.Bytes:N0} B){floor}", ratio >= 0.7));
        Ahead(rows, "Miss throughput ahead of both peers", cg.Value.Ns, r.PerKey(nameof(MissThroughputBenchmarks.HybridCache_Miss))?.Ns, r.PerKey(nameof(MissThroughputBenchmarks.FusionCache_Miss))?.Ns, lowerIsBetter: true, v => $"{v:0} ns/key");
    }

    private static void L2(SuiteResults r, List<(string, string, bool?)> rows)
    {
        List<L2HitResult>? hits = r.Redis?.L2Hits;
        if (hits is not { Count: > 0 })
        {
            rows.Add(("L2 hit over RedisCache", "not run (filtered out, or no redis-server)", null));
            return;
        }

        foreach (int callers in hits.Select(h => h.Callers).Distinct())
        {
            L2HitResult? raw = hits.FirstOrDefault(h => h.Callers == callers && h.Library == Library.Raw);
            L2HitResult? cg = hits.FirstOrDefault(h => h.Callers == callers && h.Library == Library.CacheGuard);
            if (raw is null || cg is null)
            {
                continue;
            }

            string at = $"L2 hit, {callers} caller{(callers == 1 ? string.Empty : "s")}";
            rows.Add(($"{at}: one Redis command per hit", $"{cg.CommandsPerOp:0.00} ({cg.CommandMix})", cg.CommandsPerOp is > 0.95 and < 1.05));
            double ratio = cg.OpsPerSecond / raw.OpsPerSecond;
            rows.Add(($"{at}: ≥ 0.9× raw `GetAsync` + STJ", $"{ratio:0.00}× ({cg.OpsPerSecond:N0} vs {raw.OpsPerSecond:N0} hits/s)", ratio >= 0.9 && cg.Errors == 0));
            rows.Add(($"{at}: ≤ raw + 600 B per hit", $"{cg.BytesPerOp:N0} B vs raw {raw.BytesPerOp:N0} B ({cg.BytesPerOp - raw.BytesPerOp:+#,0;-#,0} B)", cg.BytesPerOp <= raw.BytesPerOp + 600));
            L2HitResult? hybrid = hits.FirstOrDefault(h => h.Callers == callers && h.Library == Library.Hybrid);
            L2HitResult? fusion = hits.FirstOrDefault(h => h.Callers == callers && h.Library == Library.Fusion);
            Ahead(rows, $"{at}: throughput ahead of both peers", cg.OpsPerSecond, hybrid?.OpsPerSecond, fusion?.OpsPerSecond, lowerIsBetter: false, v => $"{v:N0}/s");
            Ahead(rows, $"{at}: bytes per hit ahead of both peers", cg.BytesPerOp, hybrid?.BytesPerOp, fusion?.BytesPerOp, lowerIsBetter: true, v => $"{v:N0} B");
        }
    }

    private static void Ahead(List<(string, string, bool?)> rows, string target, double ours, double? hybrid, double? fusion, bool lowerIsBetter, Func<double?, string> format)
    {
        var peers = new List<(string Name, double Value)>();
        if (hybrid is { } h)
        {
            peers.Add((Library.Hybrid, h));
        }

        if (fusion is { } f)
        {
            peers.Add((Library.Fusion, f));
        }

        if (peers.Count == 0)
        {
            rows.Add((target, "no peer measured", null));
            return;
        }

        bool met = peers.All(p => lowerIsBetter ? ours < p.Value : ours > p.Value);
        string measured = $"CacheGuard {format(ours)}; " + string.Join("; ", peers.Select(p => $"{p.Name} {format(p.Value)} ({(lowerIsBetter ? ours / p.Value : p.Value / ours).ToString("0.00", Inv)}×)"));
        rows.Add((target, measured, met));
    }
}
