using System.Diagnostics;
using System.Globalization;

namespace CacheGuard.Benchmarks;

/// <summary>The L2 hit of one library at a number of concurrent callers (medians over the rounds).</summary>
internal sealed record L2HitResult(string Library, int Callers, int Rounds, long Requests, double OpsPerSecond, double BytesPerOp, double CommandsPerOp, string CommandMix, long Errors, string? FirstError);

/// <summary>Everything the Redis part measured; a part that did not run is an empty list.</summary>
internal sealed record RedisResults(List<L2HitResult> L2Hits, List<BatchResult> Batches, List<OutageResult> Outages, List<ThreeNodeResult> ThreeNodes, List<ThroughputResult> Throughput);

/// <summary>
/// The Redis part: one private <c>redis-server</c> (<see cref="RedisServer"/>) shared by every library in the same run,
/// each library over Microsoft's RedisCache (<see cref="Peers"/>). Runs the L2 hit here, and the cold batch, the outage
/// and the three nodes in <see cref="RedisScenarios"/>. Every loop is bounded in count and in time.
/// </summary>
internal static class RedisSuite
{
    private static readonly string[] Libraries = [Library.Raw, Library.CacheGuard, Library.Hybrid, Library.Fusion];

    /// <summary>The parts, selectable as <c>CacheGuard.Benchmarks.Redis.{part}</c>.</summary>
    public static readonly string[] Parts = ["Throughput", "L2Hit", "ColdBatch", "ThreeNodes", "Outage"];

    public static async Task<RedisResults?> RunAsync(bool quick, Func<string, bool> selected, TextWriter log)
    {
        if (!RedisServer.Available)
        {
            log.WriteLine("// Redis part skipped: redis-server is needed (apt-get install -y redis-server).");
            return null;
        }

        await using RedisServer server = await RedisServer.StartAsync().ConfigureAwait(false);
        var results = new RedisResults([], [], [], [], []);
        if (selected("CacheGuard.Benchmarks.Redis.Throughput"))
        {
            results.Throughput.AddRange(await RedisThroughput.RunAsync(server, quick, log).ConfigureAwait(false));
        }

        if (selected("CacheGuard.Benchmarks.Redis.L2Hit"))
        {
            results.L2Hits.AddRange(await L2HitAsync(server, quick, log).ConfigureAwait(false));
        }

        if (selected("CacheGuard.Benchmarks.Redis.ColdBatch"))
        {
            results.Batches.AddRange(await RedisScenarios.ColdBatchAsync(server, Libraries, quick, log).ConfigureAwait(false));
        }

        if (selected("CacheGuard.Benchmarks.Redis.ThreeNodes"))
        {
            results.ThreeNodes.AddRange(await RedisScenarios.ThreeNodesAsync(server, quick, log).ConfigureAwait(false));
        }

        // Last: it stops and restarts the server.
        if (selected("CacheGuard.Benchmarks.Redis.Outage"))
        {
            results.Outages.AddRange(await RedisScenarios.OutageAsync(server, Libraries, quick, log).ConfigureAwait(false));
        }

        return results;
    }

    /// <summary>
    /// The L2 hit: every call skips L1 (each library's own flag) and reads a value the library stored in Redis itself.
    /// 1 caller on one key, and 64 callers each on its own key (so no call can join another's read). Rounds take the
    /// libraries in a rotating order; the medians are reported. Redis commands per hit come from INFO commandstats.
    /// </summary>
    private static async Task<List<L2HitResult>> L2HitAsync(RedisServer server, bool quick, TextWriter log)
    {
        const int Keys = 64;
        int rounds = quick ? 1 : 5;
        var subjects = new List<RedisSubject>();
        try
        {
            var keys = new Dictionary<string, string[]>();
            Product value = Product.Create(42);
            foreach (string library in Libraries)
            {
                RedisSubject subject = RedisSubject.Create(library, server.Configuration);
                subjects.Add(subject);
                keys[library] = Enumerable.Range(0, Keys).Select(i => $"l2:{library}:{i.ToString(CultureInfo.InvariantCulture)}").ToArray();
                foreach (string key in keys[library])
                {
                    await subject.SetAsync(key, value).ConfigureAwait(false);
                }
            }

            var results = new List<L2HitResult>();
            foreach (int callers in new[] { 1, 64 })
            {
                int requests = (quick, callers) switch
                {
                    (true, 1) => 500,
                    (true, _) => 3_000,
                    (false, 1) => 10_000,
                    _ => 60_000,
                };
                var samples = subjects.ToDictionary(s => s.LibraryName, _ => new List<Sample>());
                for (int round = 0; round < rounds; round++)
                {
                    for (int i = 0; i < subjects.Count; i++)
                    {
                        RedisSubject subject = subjects[(i + round) % subjects.Count];
                        string[] own = keys[subject.LibraryName];
                        samples[subject.LibraryName].Add(await MeasureAsync(server, callers, requests, c => subject.GetFromL2Async(own[c])).ConfigureAwait(false));
                    }
                }

                foreach (RedisSubject subject in subjects)
                {
                    List<Sample> s = samples[subject.LibraryName];
                    Dictionary<string, double> mix = MedianMix(s.Select(x => x.Commands).ToList());
                    results.Add(new L2HitResult(
                        subject.LibraryName,
                        callers,
                        rounds,
                        requests,
                        Median(s.Select(x => x.OpsPerSecond)),
                        Median(s.Select(x => x.BytesPerOp)),
                        mix.Values.Sum(),
                        FormatMix(mix),
                        s.Sum(x => x.Errors),
                        s.Select(x => x.FirstError).FirstOrDefault(e => e is not null)));
                }

                log.WriteLine($"// Redis L2 hit, {callers} caller(s): done");
            }

            return results;
        }
        finally
        {
            foreach (RedisSubject subject in subjects)
            {
                await subject.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private sealed record Sample(double OpsPerSecond, double BytesPerOp, Dictionary<string, double> Commands, long Errors, string? FirstError);

    /// <summary>N callers, each issuing calls one after another until <paramref name="requests"/> have been issued in all.</summary>
    private static async Task<Sample> MeasureAsync(RedisServer server, int callers, int requests, Func<int, ValueTask<Product>> call)
    {
        await RunCallersAsync(callers, Math.Max(requests / 10, 200), call).ConfigureAwait(false); // warm up
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Dictionary<string, long> before = await server.CommandCallsAsync().ConfigureAwait(false);
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        long started = Stopwatch.GetTimestamp();
        (long errors, string? firstError) = await RunCallersAsync(callers, requests, call).ConfigureAwait(false);
        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        double bytes = (double)(GC.GetTotalAllocatedBytes(precise: true) - allocated) / requests;
        Dictionary<string, long> after = await server.CommandCallsAsync().ConfigureAwait(false);
        return new Sample(requests / seconds, bytes, RedisServer.Delta(before, after, requests), errors, firstError);
    }

    private static async Task<(long Errors, string? FirstError)> RunCallersAsync(int callers, int requests, Func<int, ValueTask<Product>> call)
    {
        int issued = 0;
        long errors = 0;
        string? firstError = null;
        var workers = new Task[callers];
        for (int i = 0; i < callers; i++)
        {
            int caller = i;
            workers[i] = Task.Run(async () =>
            {
                while (Interlocked.Increment(ref issued) <= requests)
                {
                    try
                    {
                        _ = await call(caller).ConfigureAwait(false);
                    }
                    catch (Exception ex)
                    {
                        Interlocked.Increment(ref errors);
                        Interlocked.CompareExchange(ref firstError, ex.GetType().Name + ": " + ex.Message, null);
                    }
                }
            });
        }

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromMinutes(5)).ConfigureAwait(false);
        return (errors, firstError);
    }

    /// <summary>Per command, the median over the rounds of its calls per operation.</summary>
    public static Dictionary<string, double> MedianMix(List<Dictionary<string, double>> rounds)
    {
        var mix = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase);
        foreach (string command in rounds.SelectMany(r => r.Keys).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            mix[command] = Median(rounds.Select(r => r.GetValueOrDefault(command)));
        }

        return mix;
    }

    /// <summary>"HMGET 1.00 + HGET 1.00": the commands issued per operation, largest first, those under 0.01 left out.</summary>
    public static string FormatMix(Dictionary<string, double> mix)
    {
        string text = string.Join(" + ", mix.Where(kv => kv.Value >= 0.01).OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key.ToUpperInvariant()} {kv.Value.ToString("0.00", CultureInfo.InvariantCulture)}"));
        return text.Length == 0 ? "none" : text;
    }

    public static double Median(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
