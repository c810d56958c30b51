using System.Diagnostics;
using System.Globalization;

namespace CacheGuard.Benchmarks;

/// <summary>A cold batch of keys (medians over the rounds).</summary>
internal sealed record BatchResult(string Library, int Keys, int Rounds, double MsMedian, double BytesPerBatch, double CommandsPerBatch, string CommandMix, double LoaderCallsPerBatch, long Errors, string? FirstError);

/// <summary>A Redis outage as one library lived through it.</summary>
internal sealed record OutageResult(string Library, int Misses, double MissMsMedian, double MissMsMax, int Errors, string? FirstError, double? RecoveryMs, double RecoveryLimitMs, int ProbeErrors, int OutageWritesLanded);

/// <summary>Three nodes on one cold key.</summary>
internal sealed record ThreeNodeResult(string Library, string Variant, int CallersPerNode, int Rounds, long LoadsMin, long LoadsMax, double ServeMsMedian, double ServeMsMax, long Errors, string? FirstError);

/// <summary>The Redis scenarios beyond the L2 hit: a cold batch, three nodes on one key, and an outage.</summary>
internal static class RedisScenarios
{
    public const int BatchKeys = 100;
    public static readonly TimeSpan BatchLoaderTime = TimeSpan.FromMilliseconds(1);
    public static readonly TimeSpan NodeLoaderTime = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// A cold batch: 100 keys no level has. CacheGuard's <c>GetOrLoadManyAsync</c> with one batch loader; the others
    /// (and raw cache-aside over RedisCache) call their per-key method for each key and await them together. The loader
    /// stands for one database round trip: it awaits 1 ms per call, however many keys it is given. New keys each round.
    /// </summary>
    public static async Task<List<BatchResult>> ColdBatchAsync(RedisServer server, string[] libraries, bool quick, TextWriter log)
    {
        int rounds = quick ? 2 : 20;
        Product value = Product.Create(42);
        var results = new List<BatchResult>();
        var subjects = libraries.Select(l => RedisSubject.Create(l, server.Configuration)).ToList();
        try
        {
            var samples = subjects.ToDictionary(s => s.LibraryName, _ => new List<(double Ms, double Bytes, Dictionary<string, double> Commands, long Loads)>());
            var errors = subjects.ToDictionary(s => s.LibraryName, _ => (Count: 0L, First: (string?)null));
            for (int round = -1; round < rounds; round++) // round -1 warms up
            {
                for (int i = 0; i < subjects.Count; i++)
                {
                    RedisSubject subject = subjects[(i + Math.Max(round, 0)) % subjects.Count];
                    string[] keys = Enumerable.Range(0, BatchKeys).Select(k => $"batch:{subject.LibraryName}:{round}:{k.ToString(CultureInfo.InvariantCulture)}").ToArray();
                    long loads = 0;
                    async Task<IReadOnlyDictionary<string, Product>> Loader(IReadOnlyList<string> missing, CancellationToken ct)
                    {
                        Interlocked.Increment(ref loads);
                        await Task.Delay(BatchLoaderTime, ct).ConfigureAwait(false);
                        return missing.Distinct().ToDictionary(k => k, _ => value);
                    }

                    GC.Collect();
                    Dictionary<string, long> before = await server.CommandCallsAsync().ConfigureAwait(false);
                    long allocated = GC.GetTotalAllocatedBytes(precise: true);
                    long started = Stopwatch.GetTimestamp();
                    try
                    {
                        int count = await subject.GetManyAsync(keys, Loader).AsTask().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
                        if (count != BatchKeys)
                        {
                            throw new InvalidOperationException($"{subject.Name} returned {count} of {BatchKeys} values.");
                        }
                    }
                    catch (Exception ex)
                    {
                        (long n, string? first) = errors[subject.LibraryName];
                        errors[subject.LibraryName] = (n + 1, first ?? ex.GetType().Name + ": " + ex.Message);
                    }

                    double ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    double bytes = GC.GetTotalAllocatedBytes(precise: true) - allocated;
                    Dictionary<string, long> after = await server.CommandCallsAsync().ConfigureAwait(false);
                    if (round >= 0)
                    {
                        samples[subject.LibraryName].Add((ms, bytes, RedisServer.Delta(before, after, 1), Interlocked.Read(ref loads)));
                    }
                }
            }

            foreach (RedisSubject subject in subjects)
            {
                var s = samples[subject.LibraryName];
                Dictionary<string, double> mix = RedisSuite.MedianMix(s.Select(x => x.Commands).ToList());
                results.Add(new BatchResult(
                    subject.LibraryName,
                    BatchKeys,
                    rounds,
                    RedisSuite.Median(s.Select(x => x.Ms)),
                    RedisSuite.Median(s.Select(x => x.Bytes)),
                    mix.Values.Sum(),
                    RedisSuite.FormatMix(mix),
                    RedisSuite.Median(s.Select(x => (double)x.Loads)),
                    errors[subject.LibraryName].Count,
                    errors[subject.LibraryName].First));
            }

            log.WriteLine("// Redis cold batch: done");
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

    /// <summary>
    /// Three nodes (three service providers, each its own L1 and connections) on one cold key, with and without the
    /// distributed lock where the library has one: the callers of all three nodes are parked on one gate and released
    /// together; the loader counts its calls across the nodes and awaits 50 ms. New key each round.
    /// </summary>
    public static async Task<List<ThreeNodeResult>> ThreeNodesAsync(RedisServer server, bool quick, TextWriter log)
    {
        int rounds = quick ? 2 : 10;
        int callersPerNode = quick ? 10 : 100;
        Product value = Product.Create(42);
        (string Library, bool Lock)[] setups =
        [
            (Library.CacheGuard, false), (Library.CacheGuard, true), (Library.Hybrid, false), (Library.Fusion, false), (Library.Fusion, true),
        ];
        var results = new List<ThreeNodeResult>();
        foreach ((string library, bool distributedLock) in setups)
        {
            var nodes = Enumerable.Range(0, 3).Select(_ => RedisSubject.Create(library, server.Configuration, distributedLock)).ToList();
            try
            {
                var serve = new List<double>();
                long loadsMin = long.MaxValue, loadsMax = 0, errors = 0;
                string? firstError = null;
                for (int round = -1; round < rounds; round++) // round -1 warms up (connections, JIT)
                {
                    string key = $"nodes:{library}:{(distributedLock ? "lock" : "nolock")}:{round.ToString(CultureInfo.InvariantCulture)}";
                    long loads = 0;
                    async Task<Product> Loader(string _, CancellationToken ct)
                    {
                        Interlocked.Increment(ref loads);
                        await Task.Delay(NodeLoaderTime, ct).ConfigureAwait(false);
                        return value;
                    }

                    var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    var callers = new List<Task>(3 * callersPerNode);
                    foreach (RedisSubject node in nodes)
                    {
                        for (int c = 0; c < callersPerNode; c++)
                        {
                            callers.Add(CallerAsync(gate.Task, node, key, Loader));
                        }
                    }

                    long started = Stopwatch.GetTimestamp();
                    gate.SetResult();
                    try
                    {
                        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
                    }
                    catch (Exception ex)
                    {
                        errors += callers.Count(t => !t.IsCompletedSuccessfully);
                        firstError ??= ex.GetType().Name + ": " + ex.Message;
                    }

                    double ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    if (round >= 0)
                    {
                        serve.Add(ms);
                        loadsMin = Math.Min(loadsMin, loads);
                        loadsMax = Math.Max(loadsMax, loads);
                    }
                }

                results.Add(new ThreeNodeResult(library, distributedLock ? "with distributed lock" : "no distributed lock", callersPerNode, rounds, loadsMin, loadsMax, RedisSuite.Median(serve), serve.Max(), errors, firstError));
                log.WriteLine($"// Redis three nodes, {nodes[0].Name}: done");
            }
            finally
            {
                foreach (RedisSubject node in nodes)
                {
                    await node.DisposeAsync().ConfigureAwait(false);
                }
            }
        }

        return results;

        static async Task CallerAsync(Task gate, RedisSubject node, string key, Func<string, CancellationToken, Task<Product>> loader)
        {
            await gate.ConfigureAwait(false);
            _ = await node.GetOrLoadAsync(key, loader).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A Redis outage: every library is connected and warm; the server is killed; each library (in parallel, so all see
    /// the same outage) runs sequential misses on new keys with a synchronous loader, up to a count and a time budget,
    /// counting the exceptions that reach the caller; the server is started again (empty); each library then writes a
    /// new key every 100 ms until one is found in Redis, up to a limit. Also counted: how many keys written during the
    /// outage reached Redis afterwards (a replay).
    /// </summary>
    public static async Task<List<OutageResult>> OutageAsync(RedisServer server, string[] libraries, bool quick, TextWriter log)
    {
        int maxMisses = quick ? 2 : 20;
        TimeSpan missBudget = quick ? TimeSpan.FromSeconds(3) : TimeSpan.FromSeconds(40);
        TimeSpan recoveryLimit = quick ? TimeSpan.FromSeconds(10) : TimeSpan.FromSeconds(40);
        Product value = Product.Create(42);
        var subjects = libraries.Select(l => RedisSubject.Create(l, server.Configuration)).ToList();
        try
        {
            foreach (RedisSubject subject in subjects)
            {
                _ = await subject.GetOrLoadAsync($"outage:{subject.LibraryName}:warm", (_, _) => Task.FromResult(value)).ConfigureAwait(false);
            }

            server.Stop();
            var outage = await Task.WhenAll(subjects.Select(s => Task.Run(() => MissesAsync(s)))).ConfigureAwait(false);
            await server.StartAgainAsync().ConfigureAwait(false);
            long restarted = Stopwatch.GetTimestamp();
            await server.ResetAdminAsync().ConfigureAwait(false);
            (double? Ms, int Errors)[] recovery = await Task.WhenAll(subjects.Select(s => Task.Run(() => RecoverAsync(s, restarted)))).ConfigureAwait(false);

            var results = new List<OutageResult>();
            for (int i = 0; i < subjects.Count; i++)
            {
                string library = subjects[i].LibraryName;
                int landed = await server.CountKeysAsync($"*outage:{library}:miss:*").ConfigureAwait(false);
                (List<double> times, int errors, string? first) = outage[i];
                results.Add(new OutageResult(library, times.Count, RedisSuite.Median(times), times.Count == 0 ? double.NaN : times.Max(), errors, first, recovery[i].Ms, recoveryLimit.TotalMilliseconds, recovery[i].Errors, landed));
            }

            log.WriteLine("// Redis outage: done");
            return results;
        }
        finally
        {
            foreach (RedisSubject subject in subjects)
            {
                await subject.DisposeAsync().ConfigureAwait(false);
            }
        }

        async Task<(List<double> Times, int Errors, string? First)> MissesAsync(RedisSubject subject)
        {
            var times = new List<double>();
            int errors = 0;
            string? first = null;
            long began = Stopwatch.GetTimestamp();
            for (int i = 0; i < maxMisses && Stopwatch.GetElapsedTime(began) < missBudget; i++)
            {
                long started = Stopwatch.GetTimestamp();
                try
                {
                    _ = await subject.GetOrLoadAsync($"outage:{subject.LibraryName}:miss:{i.ToString(CultureInfo.InvariantCulture)}", (_, _) => Task.FromResult(value))
                        .AsTask().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    errors++;
                    first ??= ex.GetType().Name + ": " + ex.Message;
                }

                times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }

            return (times, errors, first);
        }

        async Task<(double? Ms, int Errors)> RecoverAsync(RedisSubject subject, long restarted)
        {
            int errors = 0;
            for (int probe = 0; Stopwatch.GetElapsedTime(restarted) < recoveryLimit; probe++)
            {
                try
                {
                    _ = await subject.GetOrLoadAsync($"outage:{subject.LibraryName}:probe:{probe.ToString(CultureInfo.InvariantCulture)}", (_, _) => Task.FromResult(value))
                        .AsTask().WaitAsync(recoveryLimit).ConfigureAwait(false);
                }
                catch (Exception)
                {
                    errors++; // the outage still showing to a caller after the restart
                }

                // A library may write L2 in the background: look a few times before the next probe.
                for (int look = 0; look < 5; look++)
                {
                    if (await server.CountKeysAsync($"*outage:{subject.LibraryName}:probe:*").ConfigureAwait(false) > 0)
                    {
                        return (Stopwatch.GetElapsedTime(restarted).TotalMilliseconds, errors);
                    }

                    await Task.Delay(20).ConfigureAwait(false);
                }
            }

            return (null, errors);
        }
    }
}
