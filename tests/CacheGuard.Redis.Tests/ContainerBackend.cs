using System.Globalization;
using System.Text;
using Docker.DotNet;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Containers;
using Testcontainers.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// Decides, once per test run, whether Redis servers are containers (a Docker engine answers and has the image
/// <c>redis:7.0</c>) or local processes, and says which on the test output. <c>CACHEGUARD_REDIS_BACKEND=process</c>
/// or <c>=container</c> forces one (container fails the tests when Docker is missing, rather than falling back).
/// </summary>
internal static class RedisBackend
{
    public const string Variable = "CACHEGUARD_REDIS_BACKEND";
    private static readonly Lazy<Task<bool>> Decision = new(DecideAsync);

    public static Task<bool> UseContainersAsync() => Decision.Value;

    public static Uri DockerEndpoint => new(Environment.GetEnvironmentVariable("DOCKER_HOST") is { Length: > 0 } host ? host : "unix:///var/run/docker.sock");

    private static async Task<bool> DecideAsync()
    {
        string? forced = Environment.GetEnvironmentVariable(Variable);
        if (forced == "process")
        {
            Say($"Redis backend: local redis-server processes ({Variable}=process).");
            return false;
        }

        // Testcontainers' Ryuk image cannot be pulled here; the fixture removes its containers itself.
        Environment.SetEnvironmentVariable("TESTCONTAINERS_RYUK_DISABLED", Environment.GetEnvironmentVariable("TESTCONTAINERS_RYUK_DISABLED") ?? "true");
        Environment.SetEnvironmentVariable("TESTCONTAINERS_HOST_OVERRIDE", Environment.GetEnvironmentVariable("TESTCONTAINERS_HOST_OVERRIDE") ?? "127.0.0.1");
        string? reason = await DockerProblemAsync().ConfigureAwait(false);
        if (reason is null)
        {
            Say("Redis backend: containers (Testcontainers.Redis 3.10.0, image redis:7.0); Redis Cluster tests use local redis-server processes.");
            return true;
        }

        Assert.That(forced, Is.Not.EqualTo("container"), $"{Variable}=container, but {reason}");
        Say($"Redis backend: local redis-server processes, because {reason} (run .ci/docker.sh to use containers).");
        return false;
    }

    private static async Task<string?> DockerProblemAsync()
    {
        if (DockerEndpoint.IsUnixPath() && !File.Exists(DockerEndpoint.LocalPath))
        {
            return $"no Docker engine socket at {DockerEndpoint.LocalPath}";
        }

        try
        {
            using DockerClient client = new DockerClientConfiguration(DockerEndpoint).CreateClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await client.System.PingAsync(timeout.Token).ConfigureAwait(false);
            await client.Images.InspectImageAsync(RedisBuilder.RedisImage, timeout.Token).ConfigureAwait(false);
            return null;
        }
        catch (DockerImageNotFoundException)
        {
            return $"the Docker engine has no image {RedisBuilder.RedisImage} and no registry is reachable";
        }
        catch (Exception ex) when (ex is DockerApiException or HttpRequestException or IOException or OperationCanceledException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return $"the Docker engine at {DockerEndpoint} did not answer ({ex.GetType().Name}: {ex.Message})";
        }
    }

    private static bool IsUnixPath(this Uri uri) => uri.Scheme == "unix";

    private static void Say(string line)
    {
        TestContext.Progress.WriteLine(line);
        Console.WriteLine(line);
    }
}

/// <summary>
/// A Redis container from Testcontainers.Redis, its port published on 127.0.0.1 at a fixed host port so a restart
/// keeps the address. A TLS container serves TLS on its published port and plain TCP inside only (readiness, redis-cli).
/// </summary>
internal sealed class ContainerBackend : IRedisBackend
{
    private const int TlsContainerPort = 6380;
    private readonly RedisContainer _container;

    private ContainerBackend(RedisContainer container, int port)
    {
        _container = container;
        Port = port;
    }

    public int Port { get; }

    public static async Task<ContainerBackend> StartAsync(RedisServerOptions options)
    {
        int port = RedisServer.FreePort();
        List<string> command = ["--protected-mode", "no", "--save", string.Empty, "--appendonly", "no"];
        RedisBuilder builder = new RedisBuilder()
            .WithName("cacheguard-redis-" + Guid.NewGuid().ToString("N")[..12])
            .WithPortBinding(port, options.Tls is null ? RedisBuilder.RedisPort : TlsContainerPort)
            .WithCreateParameterModifier(static parameters =>
            {
                // Publish on loopback only.
                foreach (IList<Docker.DotNet.Models.PortBinding> bindings in parameters.HostConfig.PortBindings.Values)
                {
                    foreach (Docker.DotNet.Models.PortBinding binding in bindings)
                    {
                        binding.HostIP = "127.0.0.1";
                    }
                }
            });
        if (options.Password is { } password)
        {
            command.AddRange(["--requirepass", password]);
            builder = builder.WithEnvironment("REDISCLI_AUTH", password); // for the readiness check and redis-cli
        }

        if (options.Tls is { } tls)
        {
            builder = builder
                .WithResourceMapping(Encoding.ASCII.GetBytes(tls.ServerPem), "/tls/server.pem")
                .WithResourceMapping(Encoding.ASCII.GetBytes(tls.ServerKeyPem), "/tls/server.key");
            command.AddRange(["--tls-port", TlsContainerPort.ToString(CultureInfo.InvariantCulture), "--tls-cert-file", "/tls/server.pem", "--tls-key-file", "/tls/server.key", "--tls-auth-clients", "no"]);
        }

        command.AddRange(options.Arguments);
        RedisContainer container = builder.WithCommand([.. command]).Build();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await container.StartAsync(timeout.Token).ConfigureAwait(false);
        return new ContainerBackend(container, port);
    }

    public Task StopAsync() => _container.StopAsync();

    public async Task StartAgainAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await _container.StartAsync(timeout.Token).ConfigureAwait(false);
    }

    public async Task PauseAsync()
    {
        using DockerClient client = new DockerClientConfiguration(RedisBackend.DockerEndpoint).CreateClient();
        await client.Containers.PauseContainerAsync(_container.Id).ConfigureAwait(false);
    }

    public async Task ResumeAsync()
    {
        using DockerClient client = new DockerClientConfiguration(RedisBackend.DockerEndpoint).CreateClient();
        await client.Containers.UnpauseContainerAsync(_container.Id).ConfigureAwait(false);
    }

    public async Task<string> CliAsync(IReadOnlyList<string> arguments)
    {
        ExecResult result = await _container.ExecAsync(["redis-cli", .. arguments]).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        Assert.That(result.ExitCode, Is.Zero, $"redis-cli {string.Join(' ', arguments)} failed in the container: {result.Stderr}");
        return result.Stdout;
    }

    public ValueTask DisposeAsync() => _container.DisposeAsync();
}
