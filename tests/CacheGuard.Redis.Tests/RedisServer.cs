using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace CacheGuard.Redis.Tests;

/// <summary>What a test needs from its Redis server: a password, TLS, or extra redis-server arguments.</summary>
internal sealed record RedisServerOptions
{
    public string? Password { get; init; }

    public TestCertificates? Tls { get; init; }

    public IReadOnlyList<string> Arguments { get; init; } = [];
}

/// <summary>
/// A real Redis server for one or more tests: a container started with Testcontainers.Redis where a Docker engine
/// answers, or else a local redis-server process on a free loopback port (see <see cref="RedisBackend"/>). Either way
/// it can be stopped, paused (SIGSTOP / docker pause) and restarted on the same port.
/// </summary>
internal sealed class RedisServer : IAsyncDisposable
{
    private readonly IRedisBackend _backend;

    private RedisServer(IRedisBackend backend, RedisServerOptions options)
    {
        _backend = backend;
        Options = options;
    }

    public RedisServerOptions Options { get; }

    public static string Host => "127.0.0.1";

    /// <summary>Gets the port clients use (the TLS port for a TLS server).</summary>
    public int Port => _backend.Port;

    /// <summary>Gets whether this server is a container (else a process).</summary>
    public bool IsContainer => _backend is ContainerBackend;

    /// <summary>Gets a StackExchange.Redis configuration string for this server (endpoint, password, ssl).</summary>
    public string Configuration =>
        $"{Host}:{Port.ToString(CultureInfo.InvariantCulture)}" +
        (Options.Password is { } password ? ",password=" + password : string.Empty) +
        (Options.Tls is not null ? ",ssl=true" : string.Empty);

    /// <summary>Starts a server on the backend this machine supports.</summary>
    public static async Task<RedisServer> StartAsync(RedisServerOptions? options = null)
    {
        options ??= new RedisServerOptions();
        IRedisBackend backend = await RedisBackend.UseContainersAsync().ConfigureAwait(false)
            ? await ContainerBackend.StartAsync(options).ConfigureAwait(false)
            : await ProcessBackend.StartAsync(options, FreePort()).ConfigureAwait(false);
        return new RedisServer(backend, options);
    }

    /// <summary>Starts a local redis-server process whatever the backend (cluster nodes, and tests that need a process).</summary>
    public static async Task<RedisServer> StartProcessAsync(RedisServerOptions? options = null, int? port = null)
    {
        options ??= new RedisServerOptions();
        return new RedisServer(await ProcessBackend.StartAsync(options, port ?? FreePort()).ConfigureAwait(false), options);
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Stops the server (SIGKILL for a process, docker stop for a container): its sockets close.</summary>
    public Task KillAsync() => _backend.StopAsync();

    /// <summary>Starts the server again on the same port, empty.</summary>
    public Task RestartAsync() => _backend.StartAgainAsync();

    /// <summary>Freezes the server (SIGSTOP, docker pause): sockets stay open, nothing is answered.</summary>
    public Task SuspendAsync() => _backend.PauseAsync();

    /// <summary>Resumes a server frozen by <see cref="SuspendAsync"/>.</summary>
    public Task ResumeAsync() => _backend.ResumeAsync();

    /// <summary>Runs redis-cli against the server (inside the container, or against the process) and returns its output.</summary>
    public Task<string> CliAsync(params string[] arguments) => _backend.CliAsync(arguments);

    public ValueTask DisposeAsync() => _backend.DisposeAsync();
}

/// <summary>One way of running a redis-server.</summary>
internal interface IRedisBackend : IAsyncDisposable
{
    int Port { get; }

    Task StopAsync();

    Task StartAgainAsync();

    Task PauseAsync();

    Task ResumeAsync();

    Task<string> CliAsync(IReadOnlyList<string> arguments);
}
