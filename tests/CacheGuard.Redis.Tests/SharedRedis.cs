using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// The servers shared by the tests of this assembly (plain, with a password, with TLS from a CA made for this run),
/// started on first use and stopped at the end. Tests that stop, pause or restart a server, or count its commands,
/// start their own.
/// </summary>
[SetUpFixture]
public sealed class SharedRedis
{
    public const string Password = "s3cret-for-tests";
    private static readonly Lock Gate = new();
    private static Task<RedisServer>? _plain;
    private static Task<RedisServer>? _password;
    private static Task<RedisServer>? _tls;
    private static TestCertificates? _certificates;

    internal static TestCertificates Certificates
    {
        get
        {
            lock (Gate)
            {
                return _certificates ??= TestCertificates.Create();
            }
        }
    }

    internal static Task<RedisServer> PlainAsync() => Start(ref _plain, static () => new RedisServerOptions());

    internal static Task<RedisServer> WithPasswordAsync() => Start(ref _password, static () => new RedisServerOptions { Password = Password });

    internal static Task<RedisServer> WithTlsAsync() => Start(ref _tls, static () => new RedisServerOptions { Tls = Certificates });

    [OneTimeTearDown]
    public async Task StopAll()
    {
        foreach (Task<RedisServer>? server in new[] { _plain, _password, _tls })
        {
            if (server is { IsCompletedSuccessfully: true })
            {
                await server.Result.DisposeAsync();
            }
        }

        _certificates?.Dispose();
    }

    private static Task<RedisServer> Start(ref Task<RedisServer>? slot, Func<RedisServerOptions> options)
    {
        lock (Gate)
        {
            return slot ??= RedisServer.StartAsync(options());
        }
    }
}

/// <summary>Client settings for tests: short timeouts and fast reconnects, so failures show within seconds.</summary>
internal static class TestRedis
{
    public static TimeSpan Guard => TimeSpan.FromSeconds(20);

    public static ConfigurationOptions Options(RedisServer server, Action<ConfigurationOptions>? tweak = null)
    {
        ConfigurationOptions options = Options(server.Configuration);
        if (server.Options.Tls is { } tls)
        {
            options.TrustIssuer(tls.Authority);
        }

        tweak?.Invoke(options);
        return options;
    }

    /// <summary>Parses <paramref name="configuration"/> and applies the tests' short timeouts and fast reconnects.</summary>
    public static ConfigurationOptions Options(string configuration)
    {
        ConfigurationOptions options = ConfigurationOptions.Parse(configuration);
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = 3_000;
        options.AsyncTimeout = 5_000;
        options.SyncTimeout = 5_000;
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.ReconnectRetryPolicy = new ExponentialRetry(50, 200);
        return options;
    }

    public static async Task<ConnectionMultiplexer> ConnectAsync(RedisServer server, Action<ConfigurationOptions>? tweak = null)
    {
        ConnectionMultiplexer multiplexer = await ConnectionMultiplexer.ConnectAsync(Options(server, tweak));
        Assert.That(multiplexer.IsConnected, Is.True, $"connected to {server.Configuration}: {multiplexer.GetStatus()}");
        return multiplexer;
    }

    /// <summary>A prefix no other test uses, for tests that share a server.</summary>
    public static string UniquePrefix(string name) => name + "-" + Guid.NewGuid().ToString("N")[..8] + ":";
}
