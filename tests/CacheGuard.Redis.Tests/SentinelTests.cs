using System.Diagnostics;
using System.Globalization;
using System.Text;
using CacheGuard;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// The Redis tier behind Redis Sentinel, as users run it: a primary, a replica and a sentinel (redis-server processes
/// on loopback), the client given only the sentinel's address and the service name. L2, backplane and lock follow the
/// primary the sentinel names, also after a failover.
/// </summary>
[NonParallelizable]
public class SentinelTests
{
    private const string Service = "cacheguard";
    private RedisServer _first = null!;
    private RedisServer _second = null!;
    private Sentinel _sentinel = null!;

    [OneTimeSetUp]
    public async Task StartServers()
    {
        _first = await RedisServer.StartProcessAsync();
        _second = await RedisServer.StartProcessAsync(new RedisServerOptions { Arguments = ["--replicaof", RedisServer.Host, _first.Port.ToString(CultureInfo.InvariantCulture)] });
        _sentinel = await Sentinel.StartAsync(Service, _first.Port);
        await Eventually.HoldsAsync(async () => (await _second.CliAsync("INFO", "replication")).Contains("master_link_status:up", StringComparison.Ordinal), "the replica follows the primary");
        TestContext.Progress.WriteLine($"Redis Sentinel: primary 127.0.0.1:{_first.Port}, replica 127.0.0.1:{_second.Port}, sentinel 127.0.0.1:{_sentinel.Port} (redis-server processes)");
    }

    [OneTimeTearDown]
    public async Task StopServers()
    {
        await _sentinel.DisposeAsync();
        await _second.DisposeAsync();
        await _first.DisposeAsync();
    }

    [Test]
    public async Task ThroughTheSentinel_L2TheBackplaneAndTheLock_UseThePrimary_AndFollowItAfterAFailover()
    {
        string instance = TestRedis.UniquePrefix("sentinel");
        static void Configure(CoalescingCacheOptions o) => o.DistributedLoadLock = true;
        static void Build(ICoalescingCacheBuilder b) => b.WithBackplane();
        await using Node a = await Node.StartAsync(Options(), instance, Configure, Build);
        await using Node b = await Node.StartAsync(Options(), instance, Configure, Build);
        await Task.WhenAll(a.Backplane.WhenSubscribed, b.Backplane.WhenSubscribed).WaitAsync(TestRedis.Guard);

        // L2: A's load lands on the primary, and B reads it from there without loading.
        Assert.That(await a.Cache.GetOrLoadAsync("order:1", static _ => Task.FromResult("loaded")), Is.EqualTo("loaded"));
        RedisServer primary = await PrimaryAsync();
        Assert.That(primary, Is.SameAs(_first));
        Assert.That((await primary.CliAsync("EXISTS", instance + "order:1")).Trim(), Is.EqualTo("1"), "the entry is on the primary");
        Assert.That(await b.Cache.GetOrLoadAsync<string>("order:1", static _ => throw new AssertionException("an L2 hit was expected")), Is.EqualTo("loaded"));

        // Backplane: A's write reaches B's L1.
        await a.Cache.SetAsync("order:1", "updated");
        await Eventually.HoldsAsync(async () => await b.Cache.GetOrLoadAsync<string>("order:1", static _ => throw new AssertionException("from L1 or L2")) == "updated", "the update reached B");

        // Lock: both nodes ask for a cold key at once; one load runs.
        Assert.That(await OneColdKeyAsync(a, b, "cold:1"), Is.EqualTo(1), "loads of one cold key across two nodes, with the lock");

        // Failover: the replica becomes the primary; both nodes follow it.
        await _sentinel.CliAsync("SENTINEL", "FAILOVER", Service);
        await Eventually.HoldsAsync(async () => await PrimaryAsync() == _second, "the sentinel names the former replica as primary", TimeSpan.FromSeconds(30));

        // Each node has followed once its own writes reach the new primary. Until then a node's lock attempts fail
        // (the former primary refuses writes), and a lock that is unavailable means loading locally: two loads.
        await WritesReachAsync(a, instance, "order:2", "A's writes reach the new primary");
        await WritesReachAsync(b, instance, "order:3", "B's writes reach the new primary");

        // B's loader fails rather than answer: should B's read still miss, a value B loaded would stay in its L1
        // (correctly: its load began after A's write) and hide A's from every later read.
        await Eventually.HoldsAsync(
            async () =>
            {
                try
                {
                    return await b.Cache.GetOrLoadAsync<string>("order:2", static _ => throw new InvalidOperationException("B found nothing in L2 yet")) == "after failover";
                }
                catch (InvalidOperationException)
                {
                    return false;
                }
            },
            "B reads A's write from the new primary",
            TimeSpan.FromSeconds(30));
        Assert.That(await OneColdKeyAsync(a, b, "cold:2"), Is.EqualTo(1), "loads of one cold key across two nodes, with the lock, after the failover");
    }

    private Task WritesReachAsync(Node node, string instance, string key, string what) => Eventually.HoldsAsync(
        async () =>
        {
            await node.Cache.SetAsync(key, "after failover");
            return (await _second.CliAsync("EXISTS", instance + key)).Trim() == "1";
        },
        what,
        TimeSpan.FromSeconds(30));

    /// <summary>Only the sentinel's address and the service name, with the tests' short timeouts.</summary>
    private ConfigurationOptions Options() =>
        TestRedis.Options(string.Create(CultureInfo.InvariantCulture, $"{RedisServer.Host}:{_sentinel.Port},serviceName={Service}"));

    private async Task<RedisServer> PrimaryAsync()
    {
        string reply = await _sentinel.CliAsync("SENTINEL", "GET-MASTER-ADDR-BY-NAME", Service);
        int port = int.Parse(reply.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)[1], CultureInfo.InvariantCulture);
        return port == _first.Port ? _first : port == _second.Port ? _second : throw new AssertionException("the sentinel names an unknown primary: " + reply);
    }

    private static async Task<int> OneColdKeyAsync(Node a, Node b, string key)
    {
        int loads = 0;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        List<Task<string>> callers = [];
        foreach (Node node in new[] { a, b })
        {
            for (int i = 0; i < 50; i++)
            {
                callers.Add(node.Cache.GetOrLoadAsync(key, async ct =>
                {
                    Interlocked.Increment(ref loads);
                    await gate.Task.WaitAsync(ct);
                    return "loaded";
                }).AsTask());
            }
        }

        await Eventually.HoldsAsync(() => Volatile.Read(ref loads) == 1 && (a.Lock.Waiting + b.Lock.Waiting) == 1, "one loader running, the other node waiting on the lock");
        gate.SetResult();
        string[] values = await Task.WhenAll(callers).WaitAsync(TestRedis.Guard);
        Assert.That(values, Has.All.EqualTo("loaded"));
        return Volatile.Read(ref loads);
    }

    /// <summary>A redis-server in sentinel mode on loopback, monitoring one primary; killed on dispose.</summary>
    private sealed class Sentinel : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _directory;

        private Sentinel(Process process, string directory, int port)
        {
            _process = process;
            _directory = directory;
            Port = port;
        }

        public int Port { get; }

        public static async Task<Sentinel> StartAsync(string service, int primaryPort)
        {
            int port = RedisServer.FreePort();
            string directory = Path.Combine(Path.GetTempPath(), "cacheguard-sentinel-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(directory);
            string config = Path.Combine(directory, "sentinel.conf");
            await File.WriteAllTextAsync(config, string.Create(CultureInfo.InvariantCulture, $"""
                port {port}
                bind 127.0.0.1
                daemonize no
                dir {directory}
                sentinel monitor {service} 127.0.0.1 {primaryPort} 1
                sentinel down-after-milliseconds {service} 2000
                sentinel failover-timeout {service} 10000

                """));
            var start = new ProcessStartInfo(ProcessBackend.FindExecutable("redis-server")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = directory };
            start.ArgumentList.Add(config);
            start.ArgumentList.Add("--sentinel");
            Process process = Process.Start(start) ?? throw new InvalidOperationException("redis-server --sentinel did not start.");
            var log = new StringBuilder();
            process.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
            process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var sentinel = new Sentinel(process, directory, port);
            try
            {
                await Eventually.HoldsAsync(async () => !process.HasExited && await ProcessBackend.AnswersPingAsync(port), "the sentinel answers PING", TimeSpan.FromSeconds(10));
            }
            catch (Exception)
            {
                string output;
                lock (log)
                {
                    output = log.ToString();
                }

                await sentinel.DisposeAsync();
                throw new AssertionException("redis-server --sentinel did not start: " + output);
            }

            return sentinel;
        }

        public Task<string> CliAsync(params string[] arguments) => ProcessBackend.RunCliAsync(Port, password: null, arguments);

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }

            _process.Dispose();
            if (Directory.Exists(_directory))
            {
                Directory.Delete(_directory, recursive: true);
            }
        }
    }
}
