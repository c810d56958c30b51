using System.CommandLine;
using System.Globalization;
using CacheGuard.Soak;

// The soak and chaos runner (issue 13): three CacheGuard nodes on one redis-server under a mixed workload and a
// seeded fault schedule, every invariant checked as it runs. docs/reliability.md says what it checks and how to run it.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture; // logs and CSV read the same everywhere
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var duration = new Option<string>("--duration") { Description = "How long to run: 60s (CI), 30m (release), 1h...", DefaultValueFactory = _ => "60s" };
var seed = new Option<int?>("--seed") { Description = "Replays a run's fault schedule and operation sequences (default: a random seed, printed)." };
var keys = new Option<int>("--keys") { Description = "Distinct keys, Zipf-distributed.", DefaultValueFactory = _ => 1000 };
var rate = new Option<int>("--rate") { Description = "Most calls per second across the fleet.", DefaultValueFactory = _ => 5000 };
var nodes = new Option<int>("--nodes") { Description = "Cache nodes (separate service providers).", DefaultValueFactory = _ => 3 };
var workers = new Option<int>("--workers") { Description = "Concurrent workers per node.", DefaultValueFactory = _ => 16 };
var dbLatency = new Option<string>("--db-latency") { Description = "Database query latency range, min..max.", DefaultValueFactory = _ => "1ms..6ms" };
var dbErrorRate = new Option<double>("--db-error-rate") { Description = "Share of queries that fail outside error bursts.", DefaultValueFactory = _ => 0 };
var noFaults = new Option<bool>("--no-faults") { Description = "Run without the fault schedule (a healthy baseline)." };
var propagation = new Option<string>("--propagation-window") { Description = "Staleness allowed while Redis is healthy.", DefaultValueFactory = _ => "500ms" };
var stallBound = new Option<string>("--stall-bound") { Description = "After Redis answers again, the p99 wait a miss may add to its loader.", DefaultValueFactory = _ => "100ms" };
var heapBound = new Option<double>("--heap-bound-mb") { Description = "Largest heap growth from warm-up to the end.", DefaultValueFactory = _ => 32 };
var artifacts = new Option<string?>("--artifacts") { Description = "Where the log, CSV and chart go (default: artifacts/ at the repository root)." };
var cache = new Option<string>("--cache") { Description = "cacheguard (default), or passthrough: no caching at all, to check the checker (expect no stale reads and overlapping loads).", DefaultValueFactory = _ => "cacheguard" };
cache.AcceptOnlyFromAmong("cacheguard", "passthrough");
var docsImage = new Option<string?>("--docs-image") { Description = "Also write the chart here (the documented run, e.g. docs/images/soak-60s.png)." };

var root = new RootCommand("CacheGuard soak: three nodes, one Redis, faults, invariants checked continuously.")
{
    duration, seed, keys, rate, nodes, workers, dbLatency, dbErrorRate, noFaults, propagation, stallBound, heapBound, cache, artifacts, docsImage,
};

root.SetAction(async (result, _) =>
{
    // Ctrl-C stops the run cleanly (the Redis server it started is stopped too); a second Ctrl-C is left to the runtime.
    using var interrupt = new CancellationTokenSource();
    ConsoleCancelEventHandler onCancel = (_, e) =>
    {
        e.Cancel = !interrupt.IsCancellationRequested;
        interrupt.Cancel();
    };
    Console.CancelKeyPress += onCancel;

    SoakSettings settings;
    try
    {
        settings = new SoakSettings
        {
            Duration = Duration(result.GetValue(duration), "--duration"),
            Seed = result.GetValue(seed) ?? Random.Shared.Next(1, 1_000_000),
            Keys = result.GetValue(keys),
            Rate = result.GetValue(rate),
            Nodes = result.GetValue(nodes),
            WorkersPerNode = result.GetValue(workers),
            DbLatencyMin = Range(result.GetValue(dbLatency)).Min,
            DbLatencyMax = Range(result.GetValue(dbLatency)).Max,
            DbErrorRate = result.GetValue(dbErrorRate),
            Faults = !result.GetValue(noFaults),
            PassThrough = result.GetValue(cache) == "passthrough",
            PropagationWindow = Duration(result.GetValue(propagation), "--propagation-window"),
            StallBound = Duration(result.GetValue(stallBound), "--stall-bound"),
            HeapBoundMegabytes = result.GetValue(heapBound),
            ArtifactsDirectory = result.GetValue(artifacts) ?? Path.Combine(RepositoryRoot(), "artifacts"),
            DocsImage = result.GetValue(docsImage),
        };
        settings.Validate();
    }
    catch (ArgumentException ex)
    {
        Console.Error.WriteLine(ex.Message);
        return 2;
    }

    try
    {
        return await SoakRun.RunAsync(settings, interrupt.Token);
    }
    catch (OperationCanceledException) when (interrupt.IsCancellationRequested)
    {
        Console.Error.WriteLine($"soak: interrupted (seed {settings.Seed}); no verdict");
        return 2;
    }
    catch (Exception ex) when (ex is InvalidOperationException or IOException or TimeoutException)
    {
        Console.Error.WriteLine($"soak: the harness failed (seed {settings.Seed}): {ex}");
        return 2;
    }
    finally
    {
        Console.CancelKeyPress -= onCancel;
    }
});

// The run handles Ctrl-C itself (above), so System.CommandLine's own termination handling is off.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });

static TimeSpan Duration(string? text, string option) =>
    SoakSettings.TryParseDuration(text, out TimeSpan value)
        ? value
        : throw new ArgumentException($"{option} '{text}' is not a duration: use 500ms, 90s, 30m, 1h or hh:mm:ss.", option);

static (TimeSpan Min, TimeSpan Max) Range(string? text)
{
    string[] parts = (text ?? string.Empty).Split("..", 2);
    if (parts.Length != 2)
    {
        throw new ArgumentException($"--db-latency '{text}' is not a range: use min..max, e.g. 1ms..6ms.");
    }

    return (Duration(parts[0], "--db-latency"), Duration(parts[1], "--db-latency"));
}

static string RepositoryRoot()
{
    for (DirectoryInfo? directory = new(Directory.GetCurrentDirectory()); directory is not null; directory = directory.Parent)
    {
        if (File.Exists(Path.Combine(directory.FullName, "CacheGuard.sln")))
        {
            return directory.FullName;
        }
    }

    return Directory.GetCurrentDirectory();
}
