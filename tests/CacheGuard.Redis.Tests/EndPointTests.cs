using System.Globalization;

namespace CacheGuard.Redis.Tests;

/// <summary>Several endpoints in one configuration: each (re)connect tries them in order until one accepts.</summary>
public class EndPointTests
{
    [Test]
    public async Task DeadFirstEndPoint_FallsBackToTheLiveSecond()
    {
        await using RedisServer live = await RedisServer.StartAsync();
        int dead = RedisServer.FreePort();
        RedisConfiguration configuration = TestConnections.For(live, c => c.ClientName = "fallback");
        configuration.EndPoints.Insert(0, new System.Net.DnsEndPoint("127.0.0.1", dead));
        await using var connection = new RedisConnection(configuration);

        await connection.ConnectAsync().WaitAsync(TestConnections.Guard);
        Assert.Multiple(async () =>
        {
            Assert.That(connection.EndPoint, Is.EqualTo($"127.0.0.1:{dead}"), "EndPoint names the first configured server");
            Assert.That(await ServerPortAsync(connection), Is.EqualTo(live.Port), "but the socket is to the live one");
            Assert.That(await live.CliAsync("CLIENT", "LIST"), Does.Contain(" name=fallback "));
        });
    }

    [Test]
    public async Task FirstEndPointDies_TheReconnectMovesToTheSecond()
    {
        await using RedisServer first = await RedisServer.StartAsync();
        await using RedisServer second = await RedisServer.StartAsync();
        RedisConfiguration configuration = TestConnections.For(first);
        configuration.EndPoints.Add(new System.Net.DnsEndPoint(second.Host, second.Port));
        await using var connection = new RedisConnection(configuration);
        var restored = new TaskCompletionSource<RedisConnectionEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.ConnectionRestored += (_, e) => restored.TrySetResult(e);

        await connection.ExecuteAsync(new RedisCommand("SET", "where", "first"));
        Assert.That(await ServerPortAsync(connection), Is.EqualTo(first.Port));

        await first.KillAsync();
        RedisConnectionEventArgs args = await restored.Task.WaitAsync(TestConnections.Guard);
        Assert.Multiple(async () =>
        {
            Assert.That(args.EndPoint, Is.EqualTo(second.Configuration));
            Assert.That(await ServerPortAsync(connection), Is.EqualTo(second.Port));
            Assert.That((await connection.ExecuteAsync(new RedisCommand("EXISTS", "where"))).ToInt64(), Is.Zero, "a different server");
        });
    }

    /// <summary>The server's own port for this connection, from <c>CLIENT INFO</c> (<c>laddr=127.0.0.1:PORT</c>).</summary>
    private static async Task<int> ServerPortAsync(RedisConnection connection)
    {
        string info = (await connection.ExecuteAsync(new RedisCommand("CLIENT", "INFO")).AsTask().WaitAsync(TestConnections.Guard)).ToText()!;
        string laddr = info.Split(' ').Single(p => p.StartsWith("laddr=", StringComparison.Ordinal));
        return int.Parse(laddr[(laddr.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);
    }
}
