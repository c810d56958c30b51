using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Benchmarks;

/// <summary>What one client reached at a number of concurrent callers: Microsoft's RedisCache or redis-benchmark.</summary>
internal sealed record ThroughputResult(string Client, int Callers, long Requests, double OpsPerSecond, string? Note);

/// <summary>
/// The client CacheGuard.Redis builds on, measured beside Redis's own load generator: Microsoft's <c>RedisCache.GetAsync</c>
/// (StackExchange.Redis, one multiplexed connection) at 1, 16 and 64 concurrent callers, and <c>redis-benchmark -P 1</c>
/// sending the same <c>HMGET</c> from as many connections, one request in flight on each. Both read one key of the same
/// size; the median of the rounds is reported.
/// </summary>
internal static class RedisThroughput
{
    public const string RedisCacheClient = "RedisCache.GetAsync (StackExchange.Redis)";
    public const string BenchmarkClient = "redis-benchmark -P 1";
    public static readonly int[] CallerCounts = [1, 16, 64];

    public static async Task<List<ThroughputResult>> RunAsync(RedisServer server, bool quick, TextWriter log)
    {
        const string Key = "throughput:0";
        int rounds = quick ? 1 : 3;
        var results = new List<ThroughputResult>();
        await using ServiceProvider services = Peers.RawRedis(server.Configuration);
        IDistributedCache cache = services.GetRequiredService<IDistributedCache>();
        await cache.SetAsync(Key, JsonSerializer.SerializeToUtf8Bytes(Product.Create(42)), new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = Peers.L2Expiration }).ConfigureAwait(false);
        bool haveBenchmark = RedisServer.OnPath("redis-benchmark");
        foreach (int callers in CallerCounts)
        {
            int requests = (quick, callers) switch
            {
                (true, _) => 2_000,
                (false, 1) => 20_000,
                _ => 100_000,
            };
            var client = new List<double>();
            var tool = new List<double>();
            for (int round = 0; round < rounds; round++)
            {
                client.Add(await MeasureAsync(cache, Key, callers, requests).ConfigureAwait(false));
                if (haveBenchmark)
                {
                    tool.Add(await RedisBenchmarkAsync(server, Peers.InstanceName + Key, callers, requests).ConfigureAwait(false));
                }
            }

            results.Add(new ThroughputResult(RedisCacheClient, callers, requests, RedisSuite.Median(client), null));
            results.Add(new ThroughputResult(BenchmarkClient, callers, requests, haveBenchmark ? RedisSuite.Median(tool) : double.NaN, haveBenchmark ? null : "redis-benchmark not installed (apt-get install -y redis-tools)"));
            log.WriteLine($"// Redis throughput, {callers} caller(s): done");
        }

        return results;
    }

    private static async Task<double> MeasureAsync(IDistributedCache cache, string key, int callers, int requests)
    {
        await RunAsync(cache, key, callers, Math.Max(requests / 10, 200)).ConfigureAwait(false); // warm up
        long started = Stopwatch.GetTimestamp();
        await RunAsync(cache, key, callers, requests).ConfigureAwait(false);
        return requests / Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    private static async Task RunAsync(IDistributedCache cache, string key, int callers, int requests)
    {
        int issued = 0;
        var workers = new Task[callers];
        for (int i = 0; i < callers; i++)
        {
            workers[i] = Task.Run(async () =>
            {
                while (Interlocked.Increment(ref issued) <= requests)
                {
                    _ = await cache.GetAsync(key).ConfigureAwait(false) ?? throw new InvalidOperationException("the throughput key is gone");
                }
            });
        }

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromMinutes(5)).ConfigureAwait(false);
    }

    /// <summary>Runs <c>redis-benchmark</c> with RedisCache's read of <paramref name="key"/>; returns its requests per second.</summary>
    private static async Task<double> RedisBenchmarkAsync(RedisServer server, string key, int callers, int requests)
    {
        var start = new ProcessStartInfo("redis-benchmark") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { "-h", "127.0.0.1", "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-c", callers.ToString(CultureInfo.InvariantCulture), "-n", requests.ToString(CultureInfo.InvariantCulture), "-P", "1", "--csv", "HMGET", key, "absexp", "sldexp", "data" })
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2)).ConfigureAwait(false);
        string output = await stdout.ConfigureAwait(false);
        _ = await stderr.ConfigureAwait(false);

        // --csv prints a header line, then "test","rps",...: the second field of the last line.
        string last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[^1];
        string[] fields = last.Split(',');
        return fields.Length > 1 && double.TryParse(fields[1].Trim('"'), NumberStyles.Float, CultureInfo.InvariantCulture, out double rps)
            ? rps
            : throw new InvalidOperationException("redis-benchmark printed no rate: " + output);
    }
}
