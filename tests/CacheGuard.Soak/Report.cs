using System.Globalization;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Soak;

/// <summary>
/// Judges every invariant from what the run measured, prints one line per invariant (and the busiest node log events),
/// then the one summary line, and returns the exit code.
/// </summary>
internal sealed class Report(
    SoakSettings settings,
    Timeline timeline,
    ReadJudge judge,
    CallErrors errors,
    LoadWatch loads,
    StallWatch stalls,
    SimulatedDatabase db,
    FaultInjector injector,
    HealthTimeline health,
    SoakLog log)
{
    /// <summary>L1-hit windows with fewer samples than this are too thin for a p99.</summary>
    private const long MinimumWindowSamples = 200;

    public long Calls { get; init; }

    public long Writes { get; init; }

    public bool Converged { get; init; }

    public double ConvergeSeconds { get; init; }

    public double HeapGrowthMegabytes { get; init; }

    public long UnobservedExceptions { get; init; }

    /// <summary>Processor time this process used during the run, and the run's wall-clock length.</summary>
    public double CpuSeconds { get; init; }

    /// <inheritdoc cref="CpuSeconds"/>
    public double WallSeconds { get; init; }

    private long Unexpected => errors.Count(ErrorKind.Unexpected);

    /// <summary>The one line CI greps: <c>soak: N calls, E unexpected errors, S stale reads beyond window, K max concurrent loads per key, H MB heap growth, C s to converge</c>.</summary>
    public string Summary() => string.Create(
        CultureInfo.InvariantCulture,
        $"soak: {Calls} calls, {Unexpected} unexpected errors, {judge.StaleBeyondWindow} stale reads beyond window, {loads.MaxFleet} max concurrent loads per key, {HeapGrowthMegabytes:0.0} MB heap growth, {ConvergeSeconds:0.0} s to converge");

    /// <summary>Prints the verdicts and the summary (to the console and the log); returns the exit code.</summary>
    public int Print(string stem)
    {
        var verdicts = new List<(string Name, bool Ok, string Detail)>();
        CultureInfo c = CultureInfo.InvariantCulture;

        verdicts.Add(("errors", Unexpected == 0, string.Create(c,
            $"{Unexpected} unexpected{Types()}; allowed: {errors.Count(ErrorKind.LoaderError)} loader errors, {errors.Count(ErrorKind.HardTimeout)} hard timeouts, {errors.Count(ErrorKind.Cancelled)} cancelled")));

        verdicts.Add(("staleness", judge.StaleBeyondWindow == 0, string.Create(c,
            $"{judge.Judged} values judged; beyond window: {judge.StaleBeyondHealthy} while healthy (> {settings.PropagationWindow.TotalMilliseconds:0} ms), {judge.StaleBeyondUnhealthy} around faults (> {settings.UnhealthyWindow.TotalMilliseconds:0} ms), {judge.StaleAfterOwnWrite} after the node's own write; {judge.StaleWithinWindow} stale within window; oldest {judge.MaxAgeSeconds:0.00} s; {db.LateLoads} loads returned a version a completed write had replaced")));

        verdicts.Add(("loads", loads.MaxPerNode <= 1 && loads.MaxFleet <= 1, string.Create(c,
            $"{loads.Loads} loads ({loads.BatchLoads} from batches); max live per key: {loads.MaxPerNode} per node, {loads.MaxFleet} fleet-wide while healthy ({loads.MaxRaw} counting allowed overlaps); overlaps: {loads.NodeOverlaps} per node ({loads.NodeOverlapsAfterAnnouncement} after another node's load announcement), {loads.FleetOverlaps} fleet-wide ({loads.FleetOverlapsWithBatch} with a batch); allowed: {loads.AllowedAbandoned} abandoned, {loads.AllowedSuperseded} superseded, {loads.AllowedDisturbed} during lock faults")));

        verdicts.Add(("convergence", Converged && ConvergeSeconds <= settings.ConvergenceBound.TotalSeconds, Converged
            ? string.Create(c, $"{ConvergeSeconds:0.00} s after the writes stopped (bound {settings.ConvergenceBound.TotalSeconds:0.0} s)")
            : string.Create(c, $"not converged {ConvergeSeconds:0.0} s after the writes stopped (bound {settings.ConvergenceBound.TotalSeconds:0.0} s)")));

        verdicts.Add(("leaks", UnobservedExceptions == 0 && HeapGrowthMegabytes <= settings.HeapBoundMegabytes, string.Create(c,
            $"{UnobservedExceptions} unobserved task exceptions; heap {HeapGrowthMegabytes:+0.0;-0.0} MB from warm-up to end (bound {settings.HeapBoundMegabytes:0} MB)")));

        var windows = timeline.L1Windows.Where(w => w.Count >= MinimumWindowSamples).ToList();
        double worstWindow = windows.Count == 0 ? 0 : windows.Max(w => w.P99Us);
        double boundUs = settings.L1HitP99Bound.TotalMilliseconds * 1000;
        bool latencyOk = worstWindow < boundUs && timeline.HeartbeatLateMaxMs < settings.StarvationBound.TotalMilliseconds;
        verdicts.Add(("latency", latencyOk, string.Create(c,
            $"L1 hits: {timeline.L1HitCount}, p50 {timeline.L1HitPercentileUs(50):0.0} µs, p99 {timeline.L1HitPercentileUs(99):0.0} µs, worst 10 s window p99 {worstWindow:0.0} µs (bound {boundUs:0} µs); all calls p50 {timeline.CallPercentileMs(50):0.000} ms, p99 {timeline.CallPercentileMs(99):0.0} ms; heartbeat max {timeline.HeartbeatLateMaxMs:0} ms late (bound {settings.StarvationBound.TotalMilliseconds:0} ms), pending work items max {timeline.PendingWorkItemsMax}")));

        verdicts.Add(("stall", stalls.RecoveriesBeyondBound == 0, string.Create(c,
            $"{stalls.Recoveries} recoveries, {stalls.RecoveriesBeyondBound} with p99 beyond the bound ({settings.StallBound.TotalMilliseconds:0} ms beyond the loader); {stalls.Measured} misses measured, {stalls.OverBound} over, worst {stalls.ExcessMilliseconds(100):0} ms")));

        Console.WriteLine();
        stalls.WriteSummary();
        foreach ((string name, bool ok, string detail) in verdicts)
        {
            log.Write($"invariant {name}: {(ok ? "ok" : "FAILED")} ({detail})", console: true);
        }

        string faults = injector.Done.Count == 0 ? "none" : string.Join(", ", injector.Done.OrderBy(d => d.Key).Select(d => $"{d.Value} {d.Key}"));
        log.Write($"faults done: {faults}; harness errors: {injector.HarnessErrors}; {Writes} writes", console: true);
        log.Write(string.Create(c, $"CPU: {CpuSeconds:0.0} s of processor time in {WallSeconds:0.0} s ({CpuSeconds / Math.Max(WallSeconds, 1):0.00} cores on average, of {Environment.ProcessorCount}; redis-server not included)"), console: true);
        log.Write($"node log events (warning and above, id x count): {NodeEvents()}; {log.Suppressed} lines over budget not written; {ErrorEvents()} error-level events; {health.UnscheduledTrouble} Redis trouble reports outside scheduled faults", console: true);
        log.Write($"artifacts: {stem}.log, {stem}.csv, {stem}.png", console: true);

        string summary = Summary();
        log.Write(summary);
        Console.WriteLine(summary);
        if (injector.HarnessErrors > 0)
        {
            return 2;
        }

        return verdicts.All(v => v.Ok) ? 0 : 1;
    }

    private string Types() =>
        errors.UnexpectedTypes.Count == 0 ? string.Empty : " (" + string.Join(", ", errors.UnexpectedTypes.OrderByDescending(t => t.Value).Take(5).Select(t => $"{t.Value}x {t.Key}")) + ")";

    private long ErrorEvents() => log.EventCounts.Where(e => e.Key.Level >= LogLevel.Error).Sum(e => e.Value);

    private string NodeEvents() =>
        string.Join(", ", log.EventCounts
            .Where(e => e.Key.Level >= LogLevel.Warning)
            .GroupBy(e => e.Key.EventId)
            .Select(g => (Id: g.Key, Count: g.Sum(e => e.Value), Level: g.Max(e => e.Key.Level)))
            .OrderByDescending(g => g.Count)
            .Take(12)
            .Select(g => $"{g.Id}x{g.Count}"));
}
