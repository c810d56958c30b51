using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Redis.Tests;

/// <summary>Each test starts its own redis-server, because it kills it or needs special settings.</summary>
public class FaultTests
{
    [Test]
    public async Task ServerKilledDuringAStreamOfOperations_CommandsFailPromptly_ThenTheClientRecoversOnRestart()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using var connection = new RedisConnection(TestConnections.For(server, c => c.AsyncTimeout = TimeSpan.FromSeconds(30)));
        var cache = new RedisDistributedCache(connection);
        await connection.ConnectAsync();
        var lost = new TaskCompletionSource<RedisConnectionEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        var restored = new TaskCompletionSource<RedisConnectionEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.ConnectionFailed += (_, e) => lost.TrySetResult(e);
        connection.ConnectionRestored += (_, e) => restored.TrySetResult(e);

        using var stop = new CancellationTokenSource();
        var failures = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        int succeeded = 0;
        async Task Worker(int id)
        {
            var options = new DistributedCacheEntryOptions();
            for (int i = 0; i < 1_000_000 && !stop.IsCancellationRequested; i++)
            {
                try
                {
                    await cache.SetAsync($"w{id}", [(byte)i], options);
                    await cache.GetAsync($"w{id}");
                    Interlocked.Increment(ref succeeded);
                }
                catch (RedisConnectionException ex)
                {
                    failures.Add(ex);
                    return;
                }
            }
        }

        Task[] workers = Enumerable.Range(0, 8).Select(i => Task.Run(() => Worker(i))).ToArray();
        while (Volatile.Read(ref succeeded) < 500)
        {
            await Task.Yield();
        }

        var killedAt = Stopwatch.StartNew();
        await server.KillAsync();

        // Every worker sees a RedisConnectionException well before the 30 s command timeout.
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.That(killedAt.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        Assert.That(failures, Has.Count.EqualTo(8));
        Assert.That(failures.Select(f => f.Message), Has.All.Contain("127.0.0.1:" + server.Port));
        RedisConnectionEventArgs lostArgs = await lost.Task.WaitAsync(TestConnections.Guard);
        Assert.That(lostArgs.Kind, Is.EqualTo(RedisConnectionKind.Interactive));

        // While down: new commands fail fast, without waiting for any timeout.
        var failFast = Stopwatch.StartNew();
        var down = Assert.ThrowsAsync<RedisConnectionException>(() => cache.GetAsync("x"));
        Assert.That(failFast.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)));
        Assert.That(down!.FailureType, Is.EqualTo(RedisConnectionFailureType.NotConnected));

        await server.RestartAsync();
        RedisConnectionEventArgs restoredArgs = await restored.Task.WaitAsync(TestConnections.Guard);
        Assert.That(restoredArgs.Kind, Is.EqualTo(RedisConnectionKind.Interactive));

        await cache.SetAsync("after", [1], new DistributedCacheEntryOptions());
        Assert.That(await cache.GetAsync("after"), Is.EqualTo(new byte[] { 1 }));
        stop.Cancel();
    }

    [Test]
    public async Task Reconnect_RestoresAuthDatabaseAndSubscriptions()
    {
        await using RedisServer server = await RedisServer.StartAsync("--requirepass", "s3cret");
        await using var connection = new RedisConnection(TestConnections.For(server, c =>
        {
            c.Password = "s3cret";
            c.DefaultDatabase = 3;
        }));
        var received = new System.Collections.Concurrent.BlockingCollection<string>();
        await using RedisSubscription subscription = await connection.SubscribeAsync("news", (_, p) => received.Add(Encoding.UTF8.GetString(p.Span)));
        var bothRestored = new CountdownEvent(2);
        var restoredKinds = new System.Collections.Concurrent.ConcurrentBag<RedisConnectionKind>();
        var allRestored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.ConnectionRestored += (_, e) =>
        {
            restoredKinds.Add(e.Kind);
            if (bothRestored.Signal())
            {
                allRestored.TrySetResult();
            }
        };
        await connection.ExecuteAsync(new RedisCommand("SET", "k", "v"));

        await server.KillAsync();
        await server.RestartAsync();
        await allRestored.Task.WaitAsync(TestConnections.Guard);

        Assert.That(restoredKinds, Is.EquivalentTo(new[] { RedisConnectionKind.Interactive, RedisConnectionKind.Subscription }));
        RedisResult database = await connection.ExecuteAsync(new RedisCommand("CLIENT", "INFO"));
        Assert.That(database.ToText(), Does.Contain(" db=3 "));
        Assert.That(await connection.PublishAsync("news", "back"u8.ToArray()), Is.EqualTo(1));
        Assert.That(received.TryTake(out string? message, TestConnections.Guard), Is.True);
        Assert.That(message, Is.EqualTo("back"));
    }

    [Test]
    public async Task RequirePass_RightPasswordWorks_WrongPasswordIsAClearAuthenticationError()
    {
        await using RedisServer server = await RedisServer.StartAsync("--requirepass", "right-pw");

        await using var good = new RedisConnection(TestConnections.For(server, c => c.Password = "right-pw"));
        Assert.That((await good.ExecuteAsync(new RedisCommand("PING"))).ToText(), Is.EqualTo("PONG"));

        await using var bad = new RedisConnection(TestConnections.For(server, c => c.Password = "wrong-pw"));
        var ex = Assert.ThrowsAsync<RedisConnectionException>(() => bad.ConnectAsync());
        Assert.Multiple(() =>
        {
            Assert.That(ex!.FailureType, Is.EqualTo(RedisConnectionFailureType.AuthenticationFailure));
            Assert.That(ex.Message, Does.Contain("Authentication").And.Contain("WRONGPASS").And.Not.Contain("wrong-pw"));
        });

        var viaCommand = Assert.ThrowsAsync<RedisConnectionException>(async () => await new RedisConnection(TestConnections.For(server, c => c.Password = "wrong-pw")).ExecuteAsync(new RedisCommand("PING")));
        Assert.That(viaCommand!.FailureType, Is.EqualTo(RedisConnectionFailureType.AuthenticationFailure));
    }

    [Test]
    public async Task AclUser_RightCredentialsWork_WrongPasswordNamesTheUser()
    {
        await using RedisServer server = await RedisServer.StartAsync("--user", "alice", "on", ">alice-pw", "~*", "&*", "+@all");

        await using var alice = new RedisConnection(TestConnections.For(server, c =>
        {
            c.User = "alice";
            c.Password = "alice-pw";
        }));
        Assert.That((await alice.ExecuteAsync(new RedisCommand("ACL", "WHOAMI"))).ToText(), Is.EqualTo("alice"));

        await using var wrong = new RedisConnection(TestConnections.For(server, c =>
        {
            c.User = "alice";
            c.Password = "not-alice-pw";
        }));
        var ex = Assert.ThrowsAsync<RedisConnectionException>(() => wrong.ConnectAsync());
        Assert.Multiple(() =>
        {
            Assert.That(ex!.FailureType, Is.EqualTo(RedisConnectionFailureType.AuthenticationFailure));
            Assert.That(ex.Message, Does.Contain("'alice'").And.Not.Contain("not-alice-pw"));
        });
    }

    [Test]
    public async Task ServerThatAcceptsButNeverAnswers_CommandsTimeOut()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        Task<Socket> accepted = listener.AcceptSocketAsync();

        var configuration = RedisConfiguration.Parse($"127.0.0.1:{port},asyncTimeout=300");
        await using var connection = new RedisConnection(configuration);
        var elapsed = Stopwatch.StartNew();
        var ex = Assert.ThrowsAsync<RedisTimeoutException>(async () => await connection.ExecuteAsync(new RedisCommand("GET", "k")).AsTask().WaitAsync(TestConnections.Guard));
        Assert.Multiple(() =>
        {
            Assert.That(elapsed.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(250)).And.LessThan(TimeSpan.FromSeconds(3)));
            Assert.That(ex!.Message, Does.Contain("300 ms"));
        });
        using Socket socket = await accepted.WaitAsync(TestConnections.Guard);
    }

    [Test]
    public async Task HandshakeWithServerThatNeverAnswers_FailsAfterConnectTimeout()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;

        await using var connection = new RedisConnection(RedisConfiguration.Parse($"127.0.0.1:{port},password=pw,connectTimeout=300"));
        var ex = Assert.ThrowsAsync<RedisConnectionException>(() => connection.ConnectAsync().WaitAsync(TestConnections.Guard));
        Assert.Multiple(() =>
        {
            Assert.That(ex!.FailureType, Is.EqualTo(RedisConnectionFailureType.UnableToConnect));
            Assert.That(ex.Message, Does.Contain("300 ms").And.Not.Contain("pw,"));
        });
    }

    [Test]
    public async Task NothingListening_ConnectFailsPromptly_AndWithAbortConnectFalseCommandsFailFast()
    {
        int port = RedisServer.FreePort();
        await using var strict = new RedisConnection(RedisConfiguration.Parse($"127.0.0.1:{port}"));
        var ex = Assert.ThrowsAsync<RedisConnectionException>(() => strict.ConnectAsync().WaitAsync(TestConnections.Guard));
        Assert.That(ex!.Message, Does.Contain($"127.0.0.1:{port}"));

        await using var lenient = new RedisConnection(RedisConfiguration.Parse($"127.0.0.1:{port},abortConnect=false"));
        await lenient.ConnectAsync().WaitAsync(TestConnections.Guard);
        var elapsed = Stopwatch.StartNew();
        var notConnected = Assert.ThrowsAsync<RedisConnectionException>(async () => await lenient.ExecuteAsync(new RedisCommand("PING")));
        Assert.Multiple(() =>
        {
            Assert.That(notConnected!.FailureType, Is.EqualTo(RedisConnectionFailureType.NotConnected));
            Assert.That(elapsed.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1)));
        });
    }

    [Test]
    public async Task Dispose_FailsInFlightCommands_AndLaterCommandsThrowObjectDisposed()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        var connection = new RedisConnection(TestConnections.For(server));
        await connection.ConnectAsync();
        ValueTask<RedisResult> blocked = connection.ExecuteAsync(new RedisCommand("BLPOP", "never", 0));
        await connection.DisposeAsync();
        var ex = Assert.ThrowsAsync<RedisConnectionException>(async () => await blocked.AsTask().WaitAsync(TestConnections.Guard));
        Assert.That(ex!.FailureType, Is.EqualTo(RedisConnectionFailureType.Disposed));
        Assert.ThrowsAsync<ObjectDisposedException>(async () => await connection.ExecuteAsync(new RedisCommand("PING")));
    }
}
