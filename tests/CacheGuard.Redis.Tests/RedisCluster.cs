using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// A real Redis Cluster of three masters on loopback: redis-server processes with <c>cluster-enabled yes</c> and
/// <c>cluster-announce-ip 127.0.0.1</c>, joined by <c>redis-cli --cluster create ... --cluster-replicas 0</c>. Processes,
/// not containers: containers on the bridge would announce addresses the client cannot reach.
/// </summary>
internal sealed class RedisCluster : IAsyncDisposable
{
    private readonly RedisServer[] _nodes;

    private RedisCluster(RedisServer[] nodes) => _nodes = nodes;

    public IReadOnlyList<RedisServer> Nodes => _nodes;

    public static async Task<RedisCluster> StartAsync()
    {
        int[] ports = ClusterPorts(3);
        var nodes = new RedisServer[ports.Length];
        try
        {
            for (int i = 0; i < ports.Length; i++)
            {
                nodes[i] = await RedisServer.StartProcessAsync(
                    new RedisServerOptions { Arguments = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-announce-ip", "127.0.0.1", "--cluster-node-timeout", "5000"] },
                    ports[i]);
            }

            await CreateAsync(ports);
            var cluster = new RedisCluster(nodes);
            await cluster.WaitUntilReadyAsync();
            TestContext.Progress.WriteLine($"Redis Cluster: 3 masters (redis-server processes) on 127.0.0.1:{string.Join(",", ports)}");
            return cluster;
        }
        catch
        {
            foreach (RedisServer? node in nodes)
            {
                if (node is not null)
                {
                    await node.DisposeAsync();
                }
            }

            throw;
        }
    }

    /// <summary>Client settings naming every master, with the tests' short timeouts.</summary>
    public ConfigurationOptions Options()
    {
        ConfigurationOptions options = TestRedis.Options(_nodes[0]);
        options.EndPoints.Clear();
        foreach (RedisServer node in _nodes)
        {
            options.EndPoints.Add(RedisServer.Host, node.Port);
        }

        return options;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (RedisServer node in _nodes)
        {
            await node.DisposeAsync();
        }
    }

    /// <summary>Ports whose cluster bus ports (+10000) are free too.</summary>
    private static int[] ClusterPorts(int count)
    {
        var ports = new List<int>();
        for (int attempt = 0; attempt < 1000 && ports.Count < count; attempt++)
        {
            int port = Random.Shared.Next(20_000, 40_000);
            if (!ports.Contains(port) && IsFree(port) && IsFree(port + 10_000))
            {
                ports.Add(port);
            }
        }

        Assert.That(ports, Has.Count.EqualTo(count), "free ports for the cluster");
        return [.. ports];

        static bool IsFree(int port)
        {
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }
    }

    private static async Task CreateAsync(int[] ports)
    {
        var start = new ProcessStartInfo(ProcessBackend.FindExecutable("redis-cli")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("--cluster");
        start.ArgumentList.Add("create");
        foreach (int port in ports)
        {
            start.ArgumentList.Add("127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture));
        }

        start.ArgumentList.Add("--cluster-replicas");
        start.ArgumentList.Add("0");
        start.ArgumentList.Add("--cluster-yes");
        using Process process = Process.Start(start) ?? throw new InvalidOperationException("redis-cli did not start.");
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(process.ExitCode, Is.Zero, $"redis-cli --cluster create failed: {await output}{await error}");
    }

    private async Task WaitUntilReadyAsync()
    {
        foreach (RedisServer node in _nodes)
        {
            await Eventually.HoldsAsync(async () => (await node.CliAsync("CLUSTER", "INFO")).Contains("cluster_state:ok", StringComparison.Ordinal), "cluster_state:ok on every node", TimeSpan.FromSeconds(30));
        }
    }
}
