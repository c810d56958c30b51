using System.Globalization;
using ScottPlot;

namespace CacheGuard.Soak;

/// <summary>
/// The run's timeline chart (ScottPlot, rendered headless to PNG): call latency p50/p99 per second on a log scale
/// above, errors and stale reads per second below (calls per second on the right axis), fault windows shaded on both.
/// </summary>
internal static class Chart
{
    private static readonly Dictionary<FaultKind, Color> FaultColors = new()
    {
        [FaultKind.RedisStop] = Colors.Red.WithAlpha(0.18),
        [FaultKind.RedisPause] = Colors.Orange.WithAlpha(0.22),
        [FaultKind.RedisFlush] = Colors.Purple.WithAlpha(0.35),
        [FaultKind.PubSubKill] = Colors.Blue.WithAlpha(0.30),
        [FaultKind.CorruptPayloads] = Colors.Brown.WithAlpha(0.35),
        [FaultKind.DbErrorBurst] = Colors.Magenta.WithAlpha(0.12),
        [FaultKind.DbLatencySpike] = Colors.Green.WithAlpha(0.14),
    };

    public static void Save(string path, string title, IReadOnlyList<SecondStats> seconds, IReadOnlyList<PlannedFault> faults)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        double[] time = seconds.Select(s => s.Time).ToArray();

        var multiplot = new Multiplot();
        Plot latency = multiplot.GetPlot(0);
        Plot errors = new();
        multiplot.AddPlot(errors);

        // Latency, log10(ms): ScottPlot plots linear values, so the axis gets log-spaced ticks of its own.
        Shade(latency, faults, legend: true);
        AddSegments(latency, seconds, s => Log(s.P99Ms), "p99 latency (all calls)", Colors.Crimson, 2);
        AddSegments(latency, seconds, s => Log(s.P50Ms), "p50 latency", Colors.SteelBlue, 1.5f);
        double[] ticks = [-3, -2, -1, 0, 1, 2, 3, 4];
        latency.Axes.Left.SetTicks(ticks, ["1 µs", "10 µs", "0.1 ms", "1 ms", "10 ms", "100 ms", "1 s", "10 s"]);
        latency.Axes.SetLimitsY(-3.2, Math.Max(1.5, time.Length == 0 ? 1.5 : seconds.Max(s => Log(s.P99Ms)) + 0.3));
        latency.YLabel("latency (gap: no call ended)");
        latency.Title(title, size: 13);
        latency.ShowLegend(Edge.Right);

        Shade(errors, faults, legend: false);
        AddLine(errors, time, seconds.Select(s => (double)s.UnexpectedErrors).ToArray(), "unexpected errors/s", Colors.Red, 2);
        AddLine(errors, time, seconds.Select(s => (double)s.ExpectedErrors).ToArray(), "allowed errors/s (loader, timeout, cancel)", Colors.DarkOrange, 1.5f);
        AddLine(errors, time, seconds.Select(s => (double)s.StaleBeyondWindow).ToArray(), "stale reads beyond window/s", Colors.Black, 1.5f);
        var calls = errors.Add.ScatterLine(time, seconds.Select(s => (double)s.Calls).ToArray(), Colors.Gray.WithAlpha(0.6));
        calls.LegendText = "calls/s (right axis)";
        calls.Axes.YAxis = errors.Axes.Right;
        errors.Axes.Right.Label.Text = "calls per second";
        errors.YLabel("per second");
        errors.XLabel("seconds into the run");
        errors.ShowLegend(Edge.Right);

        // Same margins for both panels, so their time axes line up whatever their legends' widths.
        latency.Layout.Fixed(new PixelPadding(90, 400, 45, 40));
        errors.Layout.Fixed(new PixelPadding(90, 400, 55, 20));
        double right = time.Length == 0 ? 1 : time[^1] + 1;
        latency.Axes.SetLimitsX(0, right);
        errors.Axes.SetLimitsX(0, right);
        multiplot.SavePng(path, 1600, 900);
    }

    private static void Shade(Plot plot, IReadOnlyList<PlannedFault> faults, bool legend)
    {
        var named = new HashSet<FaultKind>();
        foreach (PlannedFault fault in faults)
        {
            // Instant faults get a visible sliver.
            double width = Math.Max(fault.Duration, 0.4);
            var span = plot.Add.HorizontalSpan(fault.At, fault.At + width, FaultColors[fault.Kind]);
            span.LineWidth = 0;
            if (legend && named.Add(fault.Kind))
            {
                span.LegendText = Name(fault.Kind);
            }
        }
    }

    /// <summary>A latency line broken where a second had no completed call (a stalled fleet), rather than drawn across.</summary>
    private static void AddSegments(Plot plot, IReadOnlyList<SecondStats> seconds, Func<SecondStats, double> value, string label, Color color, float width)
    {
        bool labelled = false;
        int i = 0;
        while (i < seconds.Count)
        {
            if (seconds[i].Calls == 0)
            {
                i++;
                continue;
            }

            int end = i;
            while (end < seconds.Count && seconds[end].Calls > 0)
            {
                end++;
            }

            double[] xs = seconds.Skip(i).Take(end - i).Select(s => s.Time).ToArray();
            double[] ys = seconds.Skip(i).Take(end - i).Select(value).ToArray();
            var line = xs.Length == 1 ? plot.Add.Scatter(xs, ys, color) : plot.Add.ScatterLine(xs, ys, color);
            line.LineWidth = width;
            if (!labelled)
            {
                line.LegendText = label;
                labelled = true;
            }

            i = end;
        }
    }

    private static void AddLine(Plot plot, double[] xs, double[] ys, string label, Color color, float width)
    {
        var line = plot.Add.ScatterLine(xs, ys, color);
        line.LegendText = label;
        line.LineWidth = width;
    }

    private static double Log(double milliseconds) => Math.Log10(Math.Max(milliseconds, 0.001));

    private static string Name(FaultKind kind) => kind switch
    {
        FaultKind.RedisStop => "redis stopped",
        FaultKind.RedisPause => "redis paused",
        FaultKind.RedisFlush => "FLUSHALL",
        FaultKind.PubSubKill => "pub/sub killed",
        FaultKind.CorruptPayloads => "corrupt payloads",
        FaultKind.DbErrorBurst => "db error burst",
        FaultKind.DbLatencySpike => "db latency spike",
        _ => kind.ToString().ToLower(CultureInfo.InvariantCulture),
    };
}
