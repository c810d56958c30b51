using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CacheGuard.Internal;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using StackExchange.Redis;

namespace CacheGuard.Benchmarks;

/// <summary>One Redis throughput measurement at a number of concurrent callers.</summary>
internal sealed record RedisThroughput(string Subject, string Operation, int Callers, long Requests, double OpsPerSecond, double? BytesPerOp, double? MeanMicroseconds);

/// <summary>
/// Item 6, Redis: a private <c>redis-server</c> on a free loopback port, started and stopped here, and measured in the
/// same run by <c>redis-benchmark -c N -t get,set -d 200 -P 1</c> (N connections, one request in flight on each) and by
/// StackExchange.Redis with N concurrent callers on one multiplexer: plain GET/SET through <see cref="IDatabase"/> (the
/// same commands as redis-benchmark), and Microsoft's <see cref="RedisCache"/> GetAsync/SetAsync (HMGET, and
/// HSET+EXPIRE: CacheGuard's L2, more work per call than GET/SET).
/// Then the end-to-end <c>GetOrLoadAsync</c> L2 hit over Redis (L1 stepped past by a manual clock, as in the in-process
/// L2 benchmark). Values are 200 bytes. The server and every client share the machine's 2 cores.
/// </summary>
internal static class RedisSuite
{
    public static readonly int[] CallerCounts = [1, 16, 64];
    private const int ValueSize = 200;

    public static async Task<List<RedisThroughput>?> RunAsync(bool quick, TextWriter log)
    {
        if (!OnPath("redis-server") || !OnPath("redis-benchmark"))
        {
            log.WriteLine("// Redis benchmarks skipped: redis-server and redis-benchmark are needed (apt-get install -y redis-server redis-tools).");
            return null;
        }

        int requests = quick ? 5_000 : 200_000;
        int port = FreePort();
        using Process server = StartServer(port);
        try
        {
            await WaitForServerAsync(port).ConfigureAwait(false);
            var results = new List<RedisThroughput>();
            var configuration = new ConfigurationOptions { AsyncTimeout = 30_000, SyncTimeout = 30_000, BacklogPolicy = BacklogPolicy.FailFast };
            configuration.EndPoints.Add(new DnsEndPoint("127.0.0.1", port));
            await using ConnectionMultiplexer connection = await ConnectionMultiplexer.ConnectAsync(configuration).ConfigureAwait(false);
            IDatabase redis = connection.GetDatabase();
            var cache = new RedisCache(new RedisCacheOptions { ConnectionMultiplexerFactory = () => Task.FromResult<IConnectionMultiplexer>(connection) });
            byte[] value = new byte[ValueSize];
            Random.Shared.NextBytes(value);
            var entry = new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromHours(1) };
            await cache.SetAsync("cg:dc", value, entry).ConfigureAwait(false);
            await redis.StringSetAsync("cg:raw", value).ConfigureAwait(false);

            foreach (int callers in CallerCounts)
            {
                results.AddRange(RedisBenchmark(port, callers, requests));
                results.Add(await MeasureAsync("StackExchange.Redis, GET", "GET", callers, requests, () => Ignore(redis.StringGetAsync("cg:raw"))).ConfigureAwait(false));
                results.Add(await MeasureAsync("StackExchange.Redis, SET", "SET", callers, requests, () => Ignore(redis.StringSetAsync("cg:raw", value))).ConfigureAwait(false));
                results.Add(await MeasureAsync("RedisCache.GetAsync (HMGET)", "GET", callers, requests, () => new ValueTask(cache.GetAsync("cg:dc"))).ConfigureAwait(false));
                results.Add(await MeasureAsync("RedisCache.SetAsync (HSET+EXPIRE)", "SET", callers, requests, () => new ValueTask(cache.SetAsync("cg:dc", value, entry))).ConfigureAwait(false));
                log.WriteLine($"// Redis, {callers} caller(s): done");
            }

            results.AddRange(await EndToEndAsync(cache, quick ? 5_000 : 100_000).ConfigureAwait(false));
            return results;
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill();
                server.WaitForExit(5_000);
            }
        }
    }

    private static async ValueTask Ignore<T>(Task<T> pending) => await pending.ConfigureAwait(false);

    /// <summary>N callers, each issuing requests one after another until <paramref name="requests"/> have been issued in all.</summary>
    private static async Task<RedisThroughput> MeasureAsync(string subject, string operation, int callers, int requests, Func<ValueTask> call)
    {
        // Warm up: JIT, pooled buffers, the connection's loops.
        await RunCallersAsync(callers, Math.Max(requests / 20, 500), call).ConfigureAwait(false);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        long started = Stopwatch.GetTimestamp();
        await RunCallersAsync(callers, requests, call).ConfigureAwait(false);
        double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        double bytes = (double)(GC.GetTotalAllocatedBytes(precise: true) - allocated) / requests;
        return new RedisThroughput(subject, operation, callers, requests, requests / seconds, bytes, seconds * 1e6 * callers / requests);
    }

    private static Task RunCallersAsync(int callers, int requests, Func<ValueTask> call)
    {
        int issued = 0;
        var workers = new Task[callers];
        for (int i = 0; i < callers; i++)
        {
            workers[i] = Task.Run(async () =>
            {
                while (Interlocked.Increment(ref issued) <= requests)
                {
                    await call().ConfigureAwait(false);
                }
            });
        }

        return Task.WhenAll(workers);
    }

    /// <summary>GetOrLoadAsync, each call an L1 miss and an L2 hit over Redis, from 1 caller and from 64 (each on its own key).</summary>
    private static async Task<List<RedisThroughput>> EndToEndAsync(RedisCache l2, int requests)
    {
        var clock = new ManualClock();
        using var cache = new DefaultCoalescingCache(
            new CoalescingCacheOptions { DefaultExpiration = TimeSpan.FromDays(3650), DefaultLocalExpiration = TimeSpan.FromMilliseconds(1), JitterRatio = 0 },
            l2,
            clock);
        string[] keys = Enumerable.Range(0, 64).Select(i => "cg:e2e:" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        foreach (string key in keys)
        {
            await cache.SetAsync(key, Product.Create(42)).ConfigureAwait(false);
        }

        var results = new List<RedisThroughput>();
        foreach (int callers in new[] { 1, 64 })
        {
            int next = -1;
            results.Add(await MeasureAsync("CacheGuard GetOrLoadAsync, L2 hit over Redis", "GetOrLoadAsync", callers, requests, () =>
            {
                clock.Advance(TimeSpan.FromMilliseconds(2));
                string key = keys[(Interlocked.Increment(ref next) & int.MaxValue) % callers];
                return Ignore(cache.GetOrLoadAsync(key, 0, static (_, _) => Task.FromException<Product>(new InvalidOperationException("Expected an L2 hit, not a load."))));
            }).ConfigureAwait(false));
        }

        return results;

        static async ValueTask Ignore(ValueTask<Product> pending) => await pending.ConfigureAwait(false);
    }

    private static IEnumerable<RedisThroughput> RedisBenchmark(int port, int callers, int requests)
    {
        var start = new ProcessStartInfo("redis-benchmark") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-c", callers.ToString(CultureInfo.InvariantCulture), "-n", requests.ToString(CultureInfo.InvariantCulture), "-t", "get,set", "-d", ValueSize.ToString(CultureInfo.InvariantCulture), "-P", "1", "--csv" })
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();

        // "test","rps","avg_latency_ms",...
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Skip(1))
        {
            string[] cells = line.Split(',').Select(c => c.Trim('"')).ToArray();
            if (cells.Length >= 3 && double.TryParse(cells[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double rps))
            {
                double? latencyUs = double.TryParse(cells[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double ms) ? ms * 1000 : null;
                yield return new RedisThroughput($"redis-benchmark -c {callers} -P 1", cells[0], callers, requests, rps, null, latencyUs);
            }
        }
    }

    private static Process StartServer(int port)
    {
        var start = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", string.Empty, "--appendonly", "no", "--daemonize", "no" })
        {
            start.ArgumentList.Add(arg);
        }

        Process process = Process.Start(start)!;
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task WaitForServerAsync(int port)
    {
        for (int i = 0; i < 100; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port).ConfigureAwait(false);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }
        }

        throw new InvalidOperationException($"redis-server did not listen on port {port} within 5 s.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Any(dir => File.Exists(Path.Combine(dir, tool)));
}
