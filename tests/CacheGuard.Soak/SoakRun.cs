using System.Globalization;

namespace CacheGuard.Soak;

/// <summary>
/// One soak run, start to end: Redis and the fleet up; warm-up, then the heap baseline; the fault schedule under the
/// workload; writes frozen for the tail while convergence sweeps run; the workload stopped; heap, unobserved task
/// exceptions and every invariant judged; chart, CSV and summary written. Exit code 0 when every invariant held,
/// 1 when one broke, 2 when the harness itself failed.
/// </summary>
internal static class SoakRun
{
    public static async Task<int> RunAsync(SoakSettings settings, CancellationToken interrupt)
    {
        Clock.Reset();
        string stem = Path.Combine(settings.ArtifactsDirectory, $"soak-{settings.Seed.ToString(CultureInfo.InvariantCulture)}");
        using var log = new SoakLog(stem + ".log");
        long unobserved = 0;
        var unobservedKinds = new System.Collections.Concurrent.ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        EventHandler<UnobservedTaskExceptionEventArgs> onUnobserved = (_, e) =>
        {
            Interlocked.Increment(ref unobserved);
            Exception inner = e.Exception.InnerExceptions.Count == 1 ? e.Exception.InnerExceptions[0] : e.Exception;
            int seen = unobservedKinds.AddOrUpdate(inner.GetType().FullName!, 1, static (_, n) => n + 1);
            if (seen <= 3)
            {
                log.Write($"VIOLATION leaks: unobserved task exception {e.Exception}", console: seen == 1);
            }

            e.SetObserved();
        };
        TaskScheduler.UnobservedTaskException += onUnobserved;
        try
        {
            return await RunCoreAsync(settings, stem, log, () => Interlocked.Read(ref unobserved), interrupt);
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= onUnobserved;
            log.Flush();
        }
    }

    private static async Task<int> RunCoreAsync(SoakSettings settings, string stem, SoakLog log, Func<long> unobserved, CancellationToken interrupt)
    {
        IReadOnlyList<PlannedFault> plan = FaultPlan.Create(settings);
        log.Write(string.Create(CultureInfo.InvariantCulture, $"soak: seed {settings.Seed}, {settings.Duration.TotalSeconds:0} s, {settings.Nodes} nodes x {settings.WorkersPerNode} workers, {settings.Keys} keys (Zipf s={settings.ZipfExponent}), up to {settings.Rate} calls/s"), console: true);
        log.Write(string.Create(CultureInfo.InvariantCulture, $"options: L2 {settings.L2Expiration.TotalSeconds} s, L1 {settings.L1Expiration.TotalSeconds} s, jitter {settings.JitterRatio}, L2 timeout {settings.L2Timeout.TotalMilliseconds} ms, loader hard timeout {settings.LoaderHardTimeout.TotalMilliseconds} ms, breaker {settings.BreakerDuration.TotalSeconds} s, lock wait {settings.LoadLockTimeout.TotalSeconds} s"), console: true);
        log.Write(string.Create(CultureInfo.InvariantCulture, $"windows: staleness {settings.PropagationWindow.TotalMilliseconds} ms healthy / {settings.UnhealthyWindow.TotalMilliseconds} ms unhealthy, settle {settings.Settle.TotalSeconds} s, convergence {settings.ConvergenceBound.TotalSeconds} s, stall {settings.StallBound.TotalMilliseconds} ms (p99)"), console: true);
        log.Write($"fault schedule ({plan.Count} faults, replay with --seed {settings.Seed}):", console: true);
        foreach (PlannedFault fault in plan)
        {
            log.Write("  " + fault, console: true);
        }

        await using RedisProcess redis = await RedisProcess.StartAsync();
        log.Write($"redis-server {redis.ProcessId} on 127.0.0.1:{redis.Port}", console: true);
        EventHandler killOnExit = (_, _) => redis.KillNow(); // Ctrl-C or a crash must not leave the server running
        AppDomain.CurrentDomain.ProcessExit += killOnExit;
        try
        {
            return await RunFleetAsync(settings, stem, log, unobserved, plan, redis, interrupt);
        }
        finally
        {
            AppDomain.CurrentDomain.ProcessExit -= killOnExit;
        }
    }

    private static async Task<int> RunFleetAsync(SoakSettings settings, string stem, SoakLog log, Func<long> unobserved, IReadOnlyList<PlannedFault> plan, RedisProcess redis, CancellationToken interrupt)
    {
        var health = new HealthTimeline(settings.Settle, settings.L2Timeout + settings.RedisCommandTimeout);
        log.OnEvent = (node, category, id, level) =>
        {
            if (SoakRedis.IsRedisTrouble(category, id, level))
            {
                health.ReportTrouble(Clock.Now, $"node{node} {category}[{id}]");
            }
        };
        var loads = new LoadWatch(settings, health, log);
        var db = new SimulatedDatabase(settings, loads);
        var judge = new ReadJudge(settings, health, log);
        var errors = new CallErrors(log);
        var stalls = new StallWatch(settings, health, log);
        var nodes = Enumerable.Range(1, settings.Nodes).Select(id => SoakNode.Create(id, redis.Port, settings, log)).ToList();
        var injector = new FaultInjector(settings, redis, db, health, log);
        Outcome outcome;
        double heapStart;
        double heapEnd;
        await using (var timeline = new Timeline())
        {
            var workload = new Workload(settings, nodes, db, judge, errors, stalls, timeline, log);
            var ready = System.Diagnostics.Stopwatch.StartNew();
            if (!settings.PassThrough)
            {
                await workload.WaitUntilReadyAsync();
            }

            Clock.Reset(); // the run's time 0: the fault schedule and the chart count from here
            log.Write(string.Create(CultureInfo.InvariantCulture, $"fleet ready after {ready.Elapsed.TotalSeconds:0.0} s (every node reaches Redis and hears the backplane); the run starts"), console: true);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(interrupt);
            TimeSpan cpuStart = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            timeline.Start();
            Task work = workload.RunAsync(stop.Token);
            try
            {
                await DelayUntil(settings.WarmUp, stop.Token);
                heapStart = HeapMegabytes();
                log.Write(string.Create(CultureInfo.InvariantCulture, $"warm-up done: {workload.Calls} calls, heap {heapStart:0.0} MB after a full GC"), console: true);

                await injector.RunAsync(plan, stop.Token);
                await DelayUntil(settings.FaultsEnd, stop.Token);
                await workload.FreezeWritesAsync();
                long frozen = Clock.Now;
                long quiet = Math.Max(frozen, health.LastFaultEnd() ?? 0);
                log.Write(string.Create(CultureInfo.InvariantCulture, $"writes stopped; last fault ended {(health.LastFaultEnd() is { } last ? Clock.Milliseconds(last, frozen) / 1000 : double.NaN):0.0} s before; convergence sweeps start"), console: true);
                (bool converged, double seconds) = await ConvergeAsync(workload, db, redis.Port, settings, quiet, log);
                await DelayUntil(settings.Duration, stop.Token);
                await stop.CancelAsync();
                await work;
                outcome = new Outcome(converged, seconds, workload.Calls, workload.Writes, (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpuStart).TotalSeconds, Clock.Seconds(Clock.Now));
            }
            catch
            {
                await stop.CancelAsync();
                await work.ContinueWith(static _ => { }, TaskScheduler.Default);
                throw;
            }
            finally
            {
                db.ErrorRate = settings.DbErrorRate;
                db.LatencySpike = TimeSpan.Zero;
            }

            await timeline.DisposeAsync();
            heapEnd = HeapMegabytes(); // with the nodes alive, the workload stopped
            await DisposeNodesAsync(nodes);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();

            var report = new Report(settings, timeline, judge, errors, loads, stalls, db, injector, health, log)
            {
                Calls = outcome.Calls,
                Writes = outcome.Writes,
                Converged = outcome.Converged,
                ConvergeSeconds = outcome.Seconds,
                HeapGrowthMegabytes = heapEnd - heapStart,
                UnobservedExceptions = unobserved(),
                CpuSeconds = outcome.CpuSeconds,
                WallSeconds = outcome.WallSeconds,
            };
            File.WriteAllText(stem + ".csv", timeline.ToCsv());
            string summary = report.Summary();
            Chart.Save(stem + ".png", $"CacheGuard soak, seed {settings.Seed}, {settings.Duration.TotalSeconds:0} s: {summary["soak: ".Length..]}", timeline.Seconds, plan);
            if (settings.DocsImage is { } docs)
            {
                Chart.Save(docs, $"CacheGuard soak, seed {settings.Seed}, {settings.Duration.TotalSeconds:0} s: {summary["soak: ".Length..]}", timeline.Seconds, plan);
            }

            return report.Print(stem);
        }
    }

    /// <summary>Sweeps until every node serves the current version of every key read, or the bound (plus slack) passes.</summary>
    private static async Task<(bool Converged, double Seconds)> ConvergeAsync(Workload workload, SimulatedDatabase db, int redisPort, SoakSettings settings, long quiet, SoakLog log)
    {
        long giveUp = quiet + Clock.Ticks(settings.ConvergenceBound + TimeSpan.FromSeconds(2));
        long runEnd = Clock.Origin + Clock.Ticks(settings.Duration);
        List<(int Node, string Key, long? Served, long Current, bool Hit)>? lastWrong = null;
        double lastWrongAt = 0;
        while (true)
        {
            long sweepStart = Clock.Now;
            List<(int Node, string Key, long? Served, long Current, bool Hit)> wrong = await workload.SweepAsync();
            double seconds = Clock.Milliseconds(quiet, sweepStart) / 1000;
            if (wrong.Count == 0)
            {
                log.Write(string.Create(CultureInfo.InvariantCulture, $"converged: every node serves the current version of every key read, {seconds:0.00} s after the writes stopped"), console: true);
                if (lastWrong is not null)
                {
                    log.Write(string.Create(CultureInfo.InvariantCulture, $"    the last sweep with wrong reads ({lastWrongAt:0.00} s): {string.Join("; ", lastWrong.Take(8).Select(w => $"node{w.Node} {w.Key} served {(w.Served?.ToString(CultureInfo.InvariantCulture) ?? "an error")}{(w.Hit ? " from L1" : string.Empty)}, database {w.Current}"))}"));
                }

                return (true, seconds);
            }

            lastWrong = wrong;
            lastWrongAt = seconds;

            if (Clock.Now > giveUp || Clock.Now > runEnd)
            {
                log.Write(string.Create(CultureInfo.InvariantCulture, $"VIOLATION convergence: {wrong.Count} reads still wrong {seconds:0.0} s after the writes stopped, e.g. {string.Join("; ", wrong.Take(8).Select(w => $"node{w.Node} {w.Key} served {(w.Served?.ToString(CultureInfo.InvariantCulture) ?? "an error")}{(w.Hit ? " from L1" : string.Empty)}, database {w.Current}"))}"), console: true);
                foreach (string key in wrong.Select(w => w.Key).Distinct().Take(5))
                {
                    string l2 = await L2Probe.DescribeAsync(redisPort, key, Clock.OriginUtc);
                    log.Write($"    {key}: {l2}; history:{Environment.NewLine}{SimulatedDatabase.History(db.Row(key))}", console: true);
                }
                return (false, Clock.Milliseconds(quiet, Clock.Now) / 1000);
            }

            await Task.Delay(250);
        }
    }

    private static async Task DisposeNodesAsync(List<SoakNode> nodes)
    {
        foreach (SoakNode node in nodes)
        {
            await node.DisposeAsync();
        }
    }

    private static async Task DelayUntil(TimeSpan sinceStart, CancellationToken cancellationToken)
    {
        TimeSpan wait = Clock.Span(Clock.Now, Clock.Origin + Clock.Ticks(sinceStart));
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, cancellationToken);
        }
    }

    /// <summary>The managed heap after a full, compacting collection, in megabytes.</summary>
    private static double HeapMegabytes()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: true) / (1024.0 * 1024.0);
    }

    private sealed record Outcome(bool Converged, double Seconds, long Calls, long Writes, double CpuSeconds, double WallSeconds);
}
