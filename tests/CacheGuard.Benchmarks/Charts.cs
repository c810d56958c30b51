using System.Globalization;
using ScottPlot;

namespace CacheGuard.Benchmarks;

/// <summary>
/// Draws the charts the report embeds, with ScottPlot (renders headless through SkiaSharp): a bar chart per scenario
/// (CacheGuard against the peers and the raw baseline) and the stampede overhead against the number of callers, as
/// lines. Each chart is drawn only when its part ran. Returns the files written.
/// </summary>
internal static class Charts
{
    private const int Width = 800;
    private const int Height = 420;

    private static readonly Dictionary<string, Color> Colors = new(StringComparer.Ordinal)
    {
        [Library.Raw] = new Color(127, 127, 127),
        [Library.CacheGuard] = new Color(31, 119, 180),
        [Library.Hybrid] = new Color(255, 127, 14),
        [Library.Fusion] = new Color(44, 160, 44),
        ["floor"] = new Color(148, 103, 189),
    };

    public static List<string> Write(SuiteResults r, string directory)
    {
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        string Path(string name)
        {
            string path = System.IO.Path.Combine(directory, name);
            written.Add(path);
            return path;
        }

        if (r.Mean(nameof(L1HitBenchmarks.Raw_Product)) is not null)
        {
            string[] series = [Library.Raw, Library.CacheGuard, Library.Hybrid, Library.Fusion];
            Grouped(
                Path("l1-hit.png"),
                "L1 hit: ns per call, log scale (lower is better)",
                "ns",
                L1HitBenchmarks.Types,
                series,
                (type, library) => r.Mean((library == Library.Raw ? "Raw" : library) + "_" + type),
                logScale: true);
        }

        if (r.Stampede is { Count: > 0 } stampede)
        {
            List<StampedeResult> parked = stampede.Where(s => s.Mode == StampedeMode.Parked && s.Subject != Stampede.HarnessSubject).ToList();
            int n = parked.Any(s => s.Callers == 10_000) ? 10_000 : parked.Max(s => s.Callers);
            var at = parked.Where(s => s.Callers == n && !s.Subject.Contains("cancellable", StringComparison.Ordinal) && !s.Subject.Contains("SingleFlight", StringComparison.Ordinal)).ToList();
            Bars(
                Path("stampede.png"),
                $"Stampede, {n:N0} parked callers: overhead in ms (lower is better)",
                "ms beyond the loader",
                at.Select(s => (Short(s), s.ExtraMsMedian, $"{s.LoaderCallsMax:N0} load(s)\n{s.BytesPerCaller:N0} B/caller", ColorOf(s))).ToList());

            Plot plot = new();
            // CacheGuard drawn last and thicker, so it stays visible where it runs along the floor and the naive baseline.
            foreach (IGrouping<string, StampedeResult> line in parked
                .Where(s => !s.Subject.Contains("cancellable", StringComparison.Ordinal))
                .GroupBy(Short)
                .OrderBy(g => g.Key == Library.CacheGuard))
            {
                double[] xs = line.Select(s => (double)s.Callers).ToArray();
                double[] ys = line.Select(s => s.ExtraMsMedian).ToArray();
                var scatter = plot.Add.Scatter(xs, ys, ColorOf(line.First()));
                scatter.LegendText = line.Key;
                scatter.LineWidth = line.Key == Library.CacheGuard ? 3 : 2;
                scatter.MarkerSize = 7;
            }

            double[] counts = parked.Select(s => (double)s.Callers).Distinct().Order().ToArray();
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(counts, counts.Select(c => c.ToString("N0", CultureInfo.InvariantCulture)).ToArray());
            plot.Title("Stampede overhead by parked callers (lower is better)");
            plot.XLabel("callers on one cold key");
            plot.YLabel("ms beyond the loader (median)");
            plot.ShowLegend(Edge.Bottom);
            plot.SavePng(Path("stampede-callers.png"), Width, Height);
        }

        if (r.PerKey(nameof(MissThroughputBenchmarks.Raw_Miss)) is not null)
        {
            Bars(
                Path("miss.png"),
                "Miss throughput: million keys per second (higher is better)",
                "M keys/s",
                new[] { Library.Raw, Library.CacheGuard, Library.Hybrid, Library.Fusion }
                    .Select(l => (Library: l, Key: r.PerKey((l == Library.Raw ? "Raw" : l) + "_Miss")))
                    .Where(x => x.Key is not null)
                    .Select(x => (x.Library, 1e3 / x.Key!.Value.Ns, $"{x.Key.Value.Bytes:N0} B/key", Colors[x.Library]))
                    .ToList());
        }

        if (r.Redis is { } redis)
        {
            if (redis.L2Hits.Count > 0)
            {
                string[] callers = redis.L2Hits.Select(h => h.Callers).Distinct().Select(c => c == 1 ? "1 caller" : $"{c} callers").ToArray();
                Grouped(
                    Path("l2-hit.png"),
                    "L2 hit over RedisCache: k hits/s (higher is better)",
                    "k hits/s",
                    callers,
                    [Library.Raw, Library.CacheGuard, Library.Hybrid, Library.Fusion],
                    (group, library) => redis.L2Hits.FirstOrDefault(h => h.Library == library && (h.Callers == 1 ? "1 caller" : $"{h.Callers} callers") == group)?.OpsPerSecond / 1e3);
            }

            if (redis.Batches.Count > 0)
            {
                Bars(
                    Path("cold-batch.png"),
                    $"Cold batch of {RedisScenarios.BatchKeys} keys: ms per batch (lower is better)",
                    "ms",
                    redis.Batches.Select(b => (b.Library, b.MsMedian, $"{b.LoaderCallsPerBatch:0} load(s)\n{b.CommandsPerBatch:0} commands", Colors[b.Library])).ToList());
            }

            if (redis.Outages.Count > 0)
            {
                Bars(
                    Path("outage.png"),
                    "Redis down: median ms per miss (lower is better)",
                    "ms per miss",
                    redis.Outages.Select(o => (o.Library, o.MissMsMedian, $"{o.Errors} error(s)\nback after {(o.RecoveryMs is { } ms ? $"{ms / 1000:0.0} s" : "never")}", Colors[o.Library])).ToList());
            }

            if (redis.ThreeNodes.Count > 0)
            {
                Bars(
                    Path("three-nodes.png"),
                    "Three nodes, one cold key: ms to serve every caller (lower is better)",
                    "ms",
                    redis.ThreeNodes.Select(t => ($"{t.Library}{(t.Variant.StartsWith("with", StringComparison.Ordinal) ? " + lock" : string.Empty)}", t.ServeMsMedian, $"{(t.LoadsMin == t.LoadsMax ? t.LoadsMax.ToString(CultureInfo.InvariantCulture) : $"{t.LoadsMin}-{t.LoadsMax}")} load(s)", Colors[t.Library])).ToList());
            }
        }

        return written;
    }

    private static string Short(StampedeResult s) => s.Subject switch
    {
        Stampede.NaiveSubject => "naive cache-aside (raw)",
        _ when s.Subject.StartsWith("Lazy", StringComparison.Ordinal) => "Lazy<Task> floor",
        _ when s.Subject.Contains("SingleFlight", StringComparison.Ordinal) => "SingleFlight",
        _ => s.Library,
    };

    private static Color ColorOf(StampedeResult s) => s.Subject.StartsWith("Lazy", StringComparison.Ordinal)
        ? Colors["floor"]
        : s.Subject.Contains("SingleFlight", StringComparison.Ordinal) ? new Color(140, 86, 75) : Colors[s.Library];

    /// <summary>One bar per subject, its value above it and a short note under its name.</summary>
    private static void Bars(string path, string title, string unit, List<(string Label, double Value, string Note, Color Color)> bars)
    {
        Plot plot = new();
        var items = new List<Bar>();
        for (int i = 0; i < bars.Count; i++)
        {
            double v = Math.Max(bars[i].Value, 0);
            items.Add(new Bar { Position = i, Value = v, FillColor = bars[i].Color, Label = Format(v) });
        }

        var plotted = plot.Add.Bars(items);
        plotted.ValueLabelStyle.FontSize = 12;
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, bars.Count).Select(i => (double)i).ToArray(),
            bars.Select(b => b.Note.Length == 0 ? b.Label : b.Label + "\n" + b.Note).ToArray());
        plot.Axes.Bottom.TickLabelStyle.FontSize = 11;
        plot.Axes.Margins(bottom: 0, top: 0.15);
        plot.Title(title);
        plot.YLabel(unit);
        plot.SavePng(path, Width, Height);
    }

    private static string Format(double v) => v.ToString(v >= 100 ? "N0" : v >= 10 ? "0.0" : "0.00", CultureInfo.InvariantCulture);

    /// <summary>Groups along the axis, one bar per series in each, a legend for the series.</summary>
    private static void Grouped(string path, string title, string unit, string[] groups, string[] series, Func<string, string, double?> value, bool logScale = false)
    {
        Plot plot = new();
        var items = new List<Bar>();
        var ticks = new List<double>();
        for (int g = 0; g < groups.Length; g++)
        {
            double start = g * (series.Length + 1);
            int present = 0;
            for (int s = 0; s < series.Length; s++)
            {
                if (value(groups[g], series[s]) is { } v)
                {
                    items.Add(new Bar { Position = start + s, Value = logScale ? Math.Log10(Math.Max(v, 1)) : v, FillColor = Colors[series[s]], Label = Format(v) });
                    present++;
                }
            }

            ticks.Add(start + (series.Length - 1) / 2.0);
        }

        var plotted = plot.Add.Bars(items);
        plotted.ValueLabelStyle.FontSize = 9;
        foreach (string s in series)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = s, FillColor = Colors[s] });
        }

        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray(), groups);
        if (logScale)
        {
            // Bars of log10(value) on an axis labelled in the values: one decade per major tick.
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = y => Math.Pow(10, y).ToString("N0", CultureInfo.InvariantCulture),
            };
        }

        plot.Axes.Margins(bottom: 0, top: 0.2);
        plot.Title(title);
        plot.YLabel(unit);
        plot.ShowLegend(Edge.Bottom);
        plot.SavePng(path, Width, Height);
    }
}
