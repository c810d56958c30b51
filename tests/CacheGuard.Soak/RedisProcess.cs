using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace CacheGuard.Soak;

/// <summary>
/// The redis-server the fleet shares: a child process on a free loopback port with persistence off (so every restart
/// comes back empty), stopped, paused and resumed with signals by the fault injector, and always gone when the run ends.
/// </summary>
internal sealed class RedisProcess : IAsyncDisposable
{
    private readonly string _executable;
    private readonly string _directory;
    private Process? _process;
    private bool _paused;

    private RedisProcess(string executable, int port)
    {
        _executable = executable;
        Port = port;
        _directory = Path.Combine(Path.GetTempPath(), "cacheguard-soak-redis-" + Guid.NewGuid().ToString("N"));
    }

    public int Port { get; }

    /// <summary>The process id while running, for the log.</summary>
    public int? ProcessId => _process?.Id;

    /// <summary>Starts redis-server on a free port and returns once it answers PING.</summary>
    /// <exception cref="InvalidOperationException">No redis-server binary, or it did not become ready in 10 s.</exception>
    public static async Task<RedisProcess> StartAsync()
    {
        var server = new RedisProcess(FindExecutable(), FreePort());
        await server.StartAsync(TimeSpan.FromSeconds(10));
        return server;
    }

    /// <summary>Stops the server: SIGTERM (clean shutdown, sockets closed) or SIGKILL (gone without a word).</summary>
    public async Task StopAsync(bool kill)
    {
        Process process = _process ?? throw new InvalidOperationException("redis-server is not running.");
        if (kill)
        {
            process.Kill(entireProcessTree: true);
        }
        else
        {
            await SignalAsync("-TERM");
        }

        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(15));
        process.Dispose();
        _process = null;
    }

    /// <summary>Starts the server again on the same port (empty: persistence is off) and waits until it answers.</summary>
    public Task RestartAsync() => StartAsync(TimeSpan.FromSeconds(10));

    /// <summary>SIGSTOP: sockets stay open and connections are accepted, but nothing is answered.</summary>
    public async Task PauseAsync()
    {
        await SignalAsync("-STOP");
        _paused = true;
    }

    /// <summary>SIGCONT: the server answers everything it queued meanwhile.</summary>
    public async Task ResumeAsync()
    {
        await SignalAsync("-CONT");
        _paused = false;
    }

    /// <summary>Kills the server at once, paused or not (for a process that is exiting: Ctrl-C, a crash).</summary>
    public void KillNow()
    {
        try
        {
            _process?.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It has exited already: nothing to kill.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { } process)
        {
            if (_paused)
            {
                await SignalAsync("-CONT");
            }

            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(15));
            process.Dispose();
            _process = null;
        }

        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private async Task StartAsync(TimeSpan readiness)
    {
        Directory.CreateDirectory(_directory);
        var start = new ProcessStartInfo(_executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,
        };
        string[] arguments =
        [
            "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", string.Empty,
            "--appendonly", "no", "--dir", _directory, "--daemonize", "no", "--loglevel", "warning",
        ];
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process = Process.Start(start) ?? throw new InvalidOperationException($"{_executable} did not start.");
        _process = process;
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is { } line) { output.Enqueue(line); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) { output.Enqueue(line); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < readiness && !process.HasExited)
        {
            if (await RawRedis.PingAsync(Port, TimeSpan.FromMilliseconds(500)))
            {
                return;
            }

            await Task.Delay(10);
        }

        throw new InvalidOperationException(
            $"redis-server on port {Port} did not answer PING within {readiness.TotalSeconds:0} s. Its output:{Environment.NewLine}{string.Join(Environment.NewLine, output)}");
    }

    private async Task SignalAsync(string signal)
    {
        Process process = _process ?? throw new InvalidOperationException("redis-server is not running.");
        using Process kill = Process.Start("kill", [signal, process.Id.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill {signal} {process.Id} failed with exit code {kill.ExitCode}.");
        }
    }

    private static string FindExecutable()
    {
        string? named = Environment.GetEnvironmentVariable("CACHEGUARD_REDIS_SERVER");
        if (!string.IsNullOrEmpty(named) && File.Exists(named))
        {
            return named;
        }

        IEnumerable<string> directories = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin")
            .Append("/usr/local/bin");
        foreach (string directory in directories)
        {
            string candidate = Path.Combine(directory, "redis-server");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException(
            "redis-server was not found on PATH, /usr/bin or /usr/local/bin. The soak needs a real server: install it " +
            "(Debian/Ubuntu: apt-get install -y redis-server; .ci/run does this) or set CACHEGUARD_REDIS_SERVER to the binary.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
