using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace CacheGuard.Benchmarks;

/// <summary>
/// A private <c>redis-server</c> on a free loopback port, started, stopped and restarted by the suite (no persistence,
/// so a restart comes back empty), and an admin connection that reads <c>INFO commandstats</c> and looks keys up.
/// </summary>
internal sealed class RedisServer : IAsyncDisposable
{
    private Process? _process;
    private ConnectionMultiplexer? _admin;

    private RedisServer(int port) => Port = port;

    public int Port { get; }

    /// <summary>The configuration string every library gets.</summary>
    public string Configuration => "127.0.0.1:" + Port.ToString(CultureInfo.InvariantCulture);

    public static bool Available => OnPath("redis-server");

    public static async Task<RedisServer> StartAsync()
    {
        var server = new RedisServer(FreePort());
        await server.StartAgainAsync().ConfigureAwait(false);
        return server;
    }

    /// <summary>Starts the server (again, after <see cref="Stop"/>) and waits until it accepts connections.</summary>
    public async Task StartAgainAsync()
    {
        var start = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", string.Empty, "--appendonly", "no", "--daemonize", "no" })
        {
            start.ArgumentList.Add(arg);
        }

        _process = Process.Start(start)!;
        _process.OutputDataReceived += static (_, _) => { };
        _process.ErrorDataReceived += static (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        for (int i = 0; i < 100; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port).ConfigureAwait(false);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }
        }

        throw new InvalidOperationException($"redis-server did not listen on port {Port} within 5 s.");
    }

    /// <summary>Kills the server process (as a crash would) and waits for it to be gone.</summary>
    public void Stop()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit(10_000);
        }

        _process?.Dispose();
        _process = null;
    }

    /// <summary>Calls per command since the server started, from <c>INFO commandstats</c> (the INFO calls themselves left out).</summary>
    public async Task<Dictionary<string, long>> CommandCallsAsync()
    {
        IServer server = (await AdminAsync().ConfigureAwait(false)).GetServer("127.0.0.1", Port);
        var calls = new Dictionary<string, long>(StringComparer.OrdinalIgnoreCase);
        foreach (IGrouping<string, KeyValuePair<string, string>> section in await server.InfoAsync("commandstats").ConfigureAwait(false))
        {
            foreach (KeyValuePair<string, string> line in section)
            {
                string command = line.Key.StartsWith("cmdstat_", StringComparison.Ordinal) ? line.Key["cmdstat_".Length..] : line.Key;
                if (command.Equals("info", StringComparison.OrdinalIgnoreCase))
                {
                    continue;
                }

                string? callsField = line.Value.Split(',').FirstOrDefault(f => f.StartsWith("calls=", StringComparison.Ordinal));
                if (callsField is not null)
                {
                    calls[command] = long.Parse(callsField["calls=".Length..], CultureInfo.InvariantCulture);
                }
            }
        }

        return calls;
    }

    /// <summary>How many keys match <paramref name="pattern"/> (SCAN; the test data set is small).</summary>
    public async Task<int> CountKeysAsync(string pattern)
    {
        IServer server = (await AdminAsync().ConfigureAwait(false)).GetServer("127.0.0.1", Port);
        int count = 0;
        await foreach (RedisKey _ in server.KeysAsync(pattern: pattern, pageSize: 1000).ConfigureAwait(false))
        {
            count++;
        }

        return count;
    }

    /// <summary>Drops the admin connection, so the next look-up connects afresh (after a restart).</summary>
    public async Task ResetAdminAsync()
    {
        if (_admin is not null)
        {
            await _admin.DisposeAsync().ConfigureAwait(false);
            _admin = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await ResetAdminAsync().ConfigureAwait(false);
        Stop();
    }

    /// <summary>The difference of two <see cref="CommandCallsAsync"/> readings, per command, divided by <paramref name="per"/>.</summary>
    public static Dictionary<string, double> Delta(Dictionary<string, long> before, Dictionary<string, long> after, double per)
    {
        var delta = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase);
        foreach ((string command, long calls) in after)
        {
            long diff = calls - before.GetValueOrDefault(command);
            if (diff > 0)
            {
                delta[command] = diff / per;
            }
        }

        return delta;
    }

    private async Task<ConnectionMultiplexer> AdminAsync() =>
        _admin ??= await ConnectionMultiplexer.ConnectAsync(Configuration + ",allowAdmin=true,abortConnect=false").ConfigureAwait(false);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':').Any(dir => File.Exists(Path.Combine(dir, tool)));
}
