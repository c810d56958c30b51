using System.Diagnostics;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// Keepalive on a hand-cranked clock: the connection's timer, command deadlines and reconnect backoff all run on a
/// <see cref="FakeTimeProvider"/>, so the tests step time across each boundary instead of sleeping. Each test has its
/// own redis-server because it inspects or stops it.
/// </summary>
public class KeepAliveTests
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(5);

    // The connection's timer ticks every asyncTimeout / 10, capped at 250 ms: keepalive and timeouts are decided per tick.
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    [Test]
    public async Task IdleConnection_SendsAPingAfterTheKeepAliveInterval_AndNotBefore()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var time = new FakeTimeProvider();
        await using var connection = new RedisConnection(Configure(server, "keepalive-idle"), timeProvider: time);
        int failures = 0;
        connection.ConnectionFailed += (_, _) => Interlocked.Increment(ref failures);
        await connection.ConnectAsync();
        Internal.PhysicalConnection socket = connection.CurrentInteractive!;
        await WaitForLastCommandAsync(server, "keepalive-idle", "client|setname");
        await server.CliAsync("CONFIG", "RESETSTAT"); // forget the fixture's readiness PINGs

        time.Advance(KeepAlive - Tick);
        Assert.That(socket.KeepAlivesSent, Is.Zero, "idle for less than keepAlive: no ping yet");

        time.Advance(Tick);
        Assert.That(socket.KeepAlivesSent, Is.EqualTo(1), "idle for keepAlive: one ping");
        await WaitForLastCommandAsync(server, "keepalive-idle", "ping");
        Assert.That(await PingCallsAsync(server), Is.EqualTo(1), "the server received exactly one PING");

        // Answered, so the clock restarts from that write: the next ping is one more interval away.
        time.Advance(KeepAlive - Tick);
        Assert.That(socket.KeepAlivesSent, Is.EqualTo(1));
        time.Advance(Tick);
        Assert.That(socket.KeepAlivesSent, Is.EqualTo(2));
        await WaitForPingCallsAsync(server, 2);
        Assert.Multiple(() =>
        {
            Assert.That(connection.IsConnected, Is.True);
            Assert.That(failures, Is.Zero);
        });
    }

    [Test]
    public async Task BusyConnection_SendsNoPing()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var time = new FakeTimeProvider();
        await using var connection = new RedisConnection(Configure(server, "keepalive-busy"), timeProvider: time);
        await connection.ConnectAsync();
        Internal.PhysicalConnection socket = connection.CurrentInteractive!;

        // A command every half interval keeps the connection from ever being idle for a whole one.
        for (int i = 0; i < 6; i++)
        {
            time.Advance(KeepAlive / 2);
            await connection.ExecuteAsync(new RedisCommand("ECHO", "busy")).AsTask().WaitAsync(TestConnections.Guard);
        }

        Assert.That(socket.KeepAlivesSent, Is.Zero);
    }

    [Test]
    public async Task UnansweredPing_ClosesTheConnection_FiresConnectionFailed_AndItReconnectsOnceTheServerAnswers()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var time = new FakeTimeProvider();
        await using var connection = new RedisConnection(Configure(server, "keepalive-hang"), timeProvider: time);
        var failed = new TaskCompletionSource<RedisConnectionEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        var restored = new TaskCompletionSource<RedisConnectionEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.ConnectionFailed += (_, e) => failed.TrySetResult(e);
        connection.ConnectionRestored += (_, e) => restored.TrySetResult(e);
        await connection.ConnectAsync();
        Internal.PhysicalConnection socket = connection.CurrentInteractive!;

        await server.SuspendAsync();
        time.Advance(KeepAlive);
        Assert.That(socket.KeepAlivesSent, Is.EqualTo(1));

        // The ping has its command timeout like any command; one tick short of it the connection is still up.
        time.Advance(CommandTimeout - Tick);
        Assert.Multiple(() =>
        {
            Assert.That(connection.IsConnected, Is.True);
            Assert.That(failed.Task.IsCompleted, Is.False);
        });

        time.Advance(Tick);
        RedisConnectionEventArgs lost = await failed.Task.WaitAsync(TestConnections.Guard);
        Assert.Multiple(() =>
        {
            Assert.That(connection.IsConnected, Is.False);
            Assert.That(lost.Kind, Is.EqualTo(RedisConnectionKind.Interactive));
            Assert.That(lost.Exception, Is.TypeOf<RedisConnectionException>());
            Assert.That(lost.Exception!.Message, Does.Contain("keepalive PING").And.Contain(server.Configuration));
        });

        // Reconnecting waits for its backoff on the same clock.
        await server.ResumeAsync();
        Assert.That(restored.Task.IsCompleted, Is.False);
        time.Advance(TimeSpan.FromMilliseconds(20));
        await restored.Task.WaitAsync(TestConnections.Guard);
        Assert.That((await connection.ExecuteAsync(new RedisCommand("ECHO", "back")).AsTask().WaitAsync(TestConnections.Guard)).ToText(), Is.EqualTo("back"));
    }

    [Test]
    public async Task KeepAliveZero_NeverPings()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var time = new FakeTimeProvider();
        await using var connection = new RedisConnection(Configure(server, "keepalive-off", c => c.KeepAlive = TimeSpan.Zero), timeProvider: time);
        await connection.ConnectAsync();
        Internal.PhysicalConnection socket = connection.CurrentInteractive!;

        time.Advance(TimeSpan.FromMinutes(10));
        Assert.That(socket.KeepAlivesSent, Is.Zero);
        Assert.That(connection.IsConnected, Is.True);
    }

    private static RedisConfiguration Configure(RedisServer server, string name, Action<RedisConfiguration>? tweak = null) =>
        TestConnections.For(server, c =>
        {
            c.ClientName = name;
            c.KeepAlive = KeepAlive;
            c.AsyncTimeout = CommandTimeout;
            c.ReconnectBaseDelay = TimeSpan.FromMilliseconds(20);
            tweak?.Invoke(c);
        });

    /// <summary>Polls CLIENT LIST (from redis-cli, so it is not our traffic) until the named client's last command is <paramref name="command"/>.</summary>
    private static async Task WaitForLastCommandAsync(RedisServer server, string name, string command)
    {
        string line = string.Empty;
        var elapsed = Stopwatch.StartNew();
        for (int attempt = 0; attempt < 500 && elapsed.Elapsed < TestConnections.Guard; attempt++)
        {
            string clients = await server.CliAsync("CLIENT", "LIST");
            line = clients.Split('\n').FirstOrDefault(l => l.Contains($" name={name} ", StringComparison.Ordinal)) ?? string.Empty;
            if (line.Contains($" cmd={command}", StringComparison.Ordinal))
            {
                return;
            }

            await Task.Delay(20);
        }

        Assert.Fail($"Client '{name}' never showed cmd={command}; last CLIENT LIST line: {line}");
    }

    private static async Task WaitForPingCallsAsync(RedisServer server, long expected)
    {
        long calls = 0;
        var elapsed = Stopwatch.StartNew();
        for (int attempt = 0; attempt < 500 && elapsed.Elapsed < TestConnections.Guard; attempt++)
        {
            calls = await PingCallsAsync(server);
            if (calls >= expected)
            {
                Assert.That(calls, Is.EqualTo(expected));
                return;
            }

            await Task.Delay(20);
        }

        Assert.Fail($"The server saw {calls} PINGs, expected {expected}.");
    }

    /// <summary>The server's PING count since the last <c>CONFIG RESETSTAT</c>, from <c>INFO commandstats</c>.</summary>
    private static async Task<long> PingCallsAsync(RedisServer server)
    {
        string stats = await server.CliAsync("INFO", "commandstats");
        string? line = stats.Split('\n').FirstOrDefault(l => l.StartsWith("cmdstat_ping:", StringComparison.Ordinal));
        if (line is null)
        {
            return 0;
        }

        string calls = line.Split(',')[0]["cmdstat_ping:calls=".Length..];
        return long.Parse(calls, System.Globalization.CultureInfo.InvariantCulture);
    }
}
