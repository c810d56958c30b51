using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CacheGuard.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// A real redis-server for tests, in the spirit of Testcontainers: started as a child process on a free loopback port
/// with persistence off, ready once it answers PING, killed on dispose. <see cref="AcquireSharedAsync"/> uses the
/// server named by CACHEGUARD_REDIS instead when that variable is set.
/// </summary>
internal sealed class RedisServer : IAsyncDisposable
{
    public const string ServerVariable = "CACHEGUARD_REDIS";
    public const string BinaryVariable = "CACHEGUARD_REDIS_SERVER";

    private readonly string[] _extraArguments;
    private readonly string _directory;
    private Process? _process;

    private RedisServer(string host, int port, string[] extraArguments, bool external)
    {
        Host = host;
        Port = port;
        _extraArguments = extraArguments;
        External = external;
        _directory = Path.Combine(Path.GetTempPath(), "cacheguard-redis-" + Guid.NewGuid().ToString("N"));
    }

    public string Host { get; }

    public int Port { get; }

    public bool External { get; }

    public string Configuration => $"{Host}:{Port}";

    /// <summary>The server for tests that only need one: CACHEGUARD_REDIS when set, else a fresh local one.</summary>
    public static async Task<RedisServer> AcquireSharedAsync()
    {
        string? external = Environment.GetEnvironmentVariable(ServerVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            DnsEndPoint endPoint = RedisConfiguration.Parse(external).EndPoints[0];
            return new RedisServer(endPoint.Host, endPoint.Port, [], external: true);
        }

        return await StartAsync().ConfigureAwait(false);
    }

    /// <summary>Starts a local redis-server (tests that kill it or need special settings always use their own).</summary>
    public static async Task<RedisServer> StartAsync(params string[] extraArguments)
    {
        var server = new RedisServer("127.0.0.1", FreePort(), extraArguments, external: false);
        await server.StartProcessAsync().ConfigureAwait(false);
        return server;
    }

    public static string FindExecutable(string name)
    {
        string? overridePath = name == "redis-server" ? Environment.GetEnvironmentVariable(BinaryVariable) : null;
        if (!string.IsNullOrEmpty(overridePath) && File.Exists(overridePath))
        {
            return overridePath;
        }

        string? pathVariable = Environment.GetEnvironmentVariable("PATH");
        foreach (string directory in (pathVariable ?? string.Empty).Split(Path.PathSeparator).Append("/usr/bin").Append("/usr/local/bin"))
        {
            string candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        // In the spirit of Testcontainers, which pulls the image it needs: on a Debian machine where the tests run as
        // root, install the server from the distribution's packages once, then look again.
        if (Provisioned.Value)
        {
            foreach (string directory in new[] { "/usr/bin", "/usr/local/bin" })
            {
                string candidate = Path.Combine(directory, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        Assert.Fail(
            $"{name} was not found. The Redis tests need a real server: install it (Debian/Ubuntu: sudo apt-get install -y redis-server redis-tools; " +
            $".ci/run does this), or set {BinaryVariable} to the redis-server binary, or set {ServerVariable}=host:port to use a running server " +
            "(the fault and authentication tests still start their own redis-server).");
        throw new UnreachableException();
    }

    /// <summary>Set to 1 to keep the tests from installing redis-server when it is missing.</summary>
    public const string NoInstallVariable = "CACHEGUARD_REDIS_NO_INSTALL";

    private static readonly Lazy<bool> Provisioned = new(InstallWithApt);

    private static bool InstallWithApt()
    {
        if (Environment.GetEnvironmentVariable(NoInstallVariable) == "1" || !File.Exists("/usr/bin/apt-get") || Environment.UserName != "root")
        {
            return false;
        }

        TestContext.Progress.WriteLine("redis-server is missing: installing redis-server and redis-tools with apt-get (set CACHEGUARD_REDIS_NO_INSTALL=1 to prevent this).");
        return RunApt("update -qq") && RunApt("install -y -qq redis-server redis-tools");

        static bool RunApt(string arguments)
        {
            var start = new ProcessStartInfo("/usr/bin/apt-get", arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
            using Process? apt = Process.Start(start);
            if (apt is null)
            {
                return false;
            }

            Task<string> output = apt.StandardOutput.ReadToEndAsync();
            Task<string> errors = apt.StandardError.ReadToEndAsync();
            if (!apt.WaitForExit(TimeSpan.FromMinutes(10)))
            {
                apt.Kill(entireProcessTree: true);
                TestContext.Progress.WriteLine($"apt-get {arguments} did not finish within 10 minutes.");
                return false;
            }

            if (apt.ExitCode != 0)
            {
                TestContext.Progress.WriteLine($"apt-get {arguments} failed ({apt.ExitCode}): {errors.Result}{output.Result}");
            }

            return apt.ExitCode == 0;
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Kills the process (SIGKILL: no goodbye on the socket's application level) and waits for it to exit.</summary>
    public async Task KillAsync()
    {
        Process process = _process ?? throw new InvalidOperationException("Not started here.");
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        process.Dispose();
        _process = null;
    }

    /// <summary>
    /// Stops the process with SIGSTOP: its sockets stay open and the kernel still accepts connections, but nothing is
    /// answered until <see cref="ResumeAsync"/>. A server that hangs, without any timing involved.
    /// </summary>
    public Task SuspendAsync() => SignalAsync("-STOP");

    /// <summary>Continues a process stopped by <see cref="SuspendAsync"/> (SIGCONT).</summary>
    public Task ResumeAsync() => SignalAsync("-CONT");

    /// <summary>Starts the server again on the same port.</summary>
    public Task RestartAsync() => StartProcessAsync();

    /// <summary>Runs redis-cli against the server and returns its standard output.</summary>
    public async Task<string> CliAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo(FindExecutable("redis-cli"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-h");
        start.ArgumentList.Add(Host);
        start.ArgumentList.Add("-p");
        start.ArgumentList.Add(Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException("redis-cli did not start.");
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        string text = await output.ConfigureAwait(false);
        Assert.That(process.ExitCode, Is.Zero, $"redis-cli {string.Join(' ', arguments)} failed: {await error.ConfigureAwait(false)}");
        return text;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { } process)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            process.Dispose();
            _process = null;
        }

        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private async Task SignalAsync(string signal)
    {
        Process process = _process ?? throw new InvalidOperationException("Not started here.");
        using Process kill = Process.Start("kill", [signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        Assert.That(kill.ExitCode, Is.Zero, $"kill {signal} {process.Id} failed");
    }

    private async Task StartProcessAsync()
    {
        Directory.CreateDirectory(_directory);
        var start = new ProcessStartInfo(FindExecutable("redis-server"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _directory,
        };
        foreach (string argument in new[] { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", string.Empty, "--appendonly", "no", "--dir", _directory, "--daemonize", "no" })
        {
            start.ArgumentList.Add(argument);
        }

        foreach (string argument in _extraArguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start.");
        _process = process;
        var log = new StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        // Readiness: poll until the port answers PING (any RESP reply; NOAUTH counts), bounded by a deadline.
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (process.HasExited)
            {
                break;
            }

            if (await AnswersPingAsync().ConfigureAwait(false))
            {
                return;
            }

            await Task.Delay(20).ConfigureAwait(false);
        }

        string output;
        lock (log)
        {
            output = log.ToString();
        }

        Assert.Fail($"redis-server on port {Port} did not answer PING within 10 s. Its output:{Environment.NewLine}{output}");
    }

    private async Task<bool> AnswersPingAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(Host, Port).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            NetworkStream stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray()).ConfigureAwait(false);
            byte[] buffer = new byte[64];
            int read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            return read > 0 && (buffer[0] == (byte)'+' || buffer[0] == (byte)'-');
        }
        catch (Exception ex) when (ex is SocketException or IOException or TimeoutException)
        {
            TestContext.Progress.WriteLine($"redis-server on {Port} not ready yet: {ex.Message}");
            return false;
        }
    }
}
