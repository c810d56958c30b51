using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// A redis-server child process on loopback with persistence off, ready once it answers PING, killed on dispose. A TLS
/// server also listens on a plain port, for readiness and redis-cli.
/// </summary>
internal sealed class ProcessBackend : IRedisBackend
{
    private readonly RedisServerOptions _options;
    private readonly string _directory;
    private readonly int _plainPort;
    private Process? _process;

    private ProcessBackend(RedisServerOptions options, int port)
    {
        _options = options;
        Port = port;
        _plainPort = options.Tls is null ? port : RedisServer.FreePort();
        _directory = Path.Combine(Path.GetTempPath(), "cacheguard-redis-" + Guid.NewGuid().ToString("N"));
    }

    public int Port { get; }

    public static async Task<ProcessBackend> StartAsync(RedisServerOptions options, int port)
    {
        var backend = new ProcessBackend(options, port);
        await backend.StartProcessAsync().ConfigureAwait(false);
        return backend;
    }

    public static string FindExecutable(string name) => RedisBinaries.Find(name);

    public async Task StopAsync()
    {
        Process process = _process ?? throw new InvalidOperationException("Not running.");
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        process.Dispose();
        _process = null;
    }

    public Task StartAgainAsync() => StartProcessAsync();

    public Task PauseAsync() => SignalAsync("-STOP");

    public Task ResumeAsync() => SignalAsync("-CONT");

    public Task<string> CliAsync(IReadOnlyList<string> arguments) => RunCliAsync(_plainPort, _options.Password, arguments);

    /// <summary>Runs redis-cli against 127.0.0.1:<paramref name="port"/> (a server or a sentinel) and returns its output; a non-zero exit fails the test.</summary>
    public static async Task<string> RunCliAsync(int port, string? password, IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(FindExecutable("redis-cli"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in (string[])["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), .. arguments])
        {
            start.ArgumentList.Add(argument);
        }

        if (password is not null)
        {
            start.Environment["REDISCLI_AUTH"] = password;
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException("redis-cli did not start.");
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        Assert.That(process.ExitCode, Is.Zero, $"redis-cli -p {port} {string.Join(' ', arguments)} failed: {await error.ConfigureAwait(false)}");
        return await output.ConfigureAwait(false);
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
        Process process = _process ?? throw new InvalidOperationException("Not running.");
        using Process kill = Process.Start("kill", [signal, process.Id.ToString(CultureInfo.InvariantCulture)]);
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
        List<string> arguments = ["--port", _plainPort.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", string.Empty, "--appendonly", "no", "--dir", _directory, "--daemonize", "no"];
        if (_options.Password is { } password)
        {
            arguments.AddRange(["--requirepass", password]);
        }

        if (_options.Tls is { } tls)
        {
            string certificate = Path.Combine(_directory, "server.pem");
            string key = Path.Combine(_directory, "server.key");
            await File.WriteAllTextAsync(certificate, tls.ServerPem).ConfigureAwait(false);
            await File.WriteAllTextAsync(key, tls.ServerKeyPem).ConfigureAwait(false);
            arguments.AddRange(["--tls-port", Port.ToString(CultureInfo.InvariantCulture), "--tls-cert-file", certificate, "--tls-key-file", key, "--tls-auth-clients", "no"]);
        }

        arguments.AddRange(_options.Arguments);
        foreach (string argument in arguments)
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

        // Readiness: the plain port answers PING (any RESP reply; NOAUTH counts), bounded by a deadline.
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10) && !process.HasExited)
        {
            if (await AnswersPingAsync(_plainPort).ConfigureAwait(false))
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

        Assert.Fail($"redis-server on port {_plainPort} did not answer PING within 10 s. Its output:{Environment.NewLine}{output}");
    }

    internal static async Task<bool> AnswersPingAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port).WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            NetworkStream stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray()).ConfigureAwait(false);
            byte[] buffer = new byte[64];
            int read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            return read > 0 && (buffer[0] == (byte)'+' || buffer[0] == (byte)'-');
        }
        catch (Exception ex) when (ex is SocketException or IOException or TimeoutException)
        {
            return false;
        }
    }
}
