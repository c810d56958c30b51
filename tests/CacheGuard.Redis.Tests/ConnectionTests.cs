using System.Collections.Concurrent;
using System.Text;

namespace CacheGuard.Redis.Tests;

public class ConnectionTests
{
    private const string CompareAndDelete = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
    private RedisServer _server = null!;
    private RedisConnection _connection = null!;
    private string _prefix = null!;

    [OneTimeSetUp]
    public async Task StartServer()
    {
        _server = await RedisServer.AcquireSharedAsync();
        _connection = new RedisConnection(TestConnections.For(_server));
    }

    [OneTimeTearDown]
    public async Task StopServer()
    {
        await _connection.DisposeAsync();
        await _server.DisposeAsync();
    }

    [SetUp]
    public void NewPrefix() => _prefix = "conn-" + Guid.NewGuid().ToString("N")[..8] + ":";

    [Test]
    public async Task FirstCommand_Connects()
    {
        await using var fresh = new RedisConnection(TestConnections.For(_server));
        Assert.That(fresh.IsConnected, Is.False);
        RedisResult pong = await fresh.ExecuteAsync(new RedisCommand("PING"));
        Assert.Multiple(() =>
        {
            Assert.That(pong.Type, Is.EqualTo(RedisResultType.SimpleString));
            Assert.That(pong.ToText(), Is.EqualTo("PONG"));
            Assert.That(fresh.IsConnected, Is.True);
        });
    }

    [Test]
    public async Task SetNxPx_AcquiresOnce_AndCompareAndDeleteScriptReleases()
    {
        string key = _prefix + "lock";
        byte[] token = Guid.NewGuid().ToByteArray();
        RedisResult first = await _connection.ExecuteAsync(new RedisCommand("SET", key, token, "NX", "PX", 30_000));
        RedisResult second = await _connection.ExecuteAsync(new RedisCommand("SET", key, "other", "NX", "PX", 30_000));
        Assert.Multiple(() =>
        {
            Assert.That(first.ToText(), Is.EqualTo("OK"));
            Assert.That(second.IsNull, Is.True);
        });

        RedisResult pttl = await _connection.ExecuteAsync(new RedisCommand("PTTL", key));
        Assert.That(pttl.ToInt64(), Is.InRange(1, 30_000));
        RedisResult extended = await _connection.ExecuteAsync(new RedisCommand("PEXPIRE", key, 60_000));
        Assert.That(extended.ToInt64(), Is.EqualTo(1));

        RedisResult wrongOwner = await _connection.ExecuteAsync(new RedisCommand("EVAL", CompareAndDelete, 1, key, "not-the-token"));
        RedisResult owner = await _connection.ExecuteAsync(new RedisCommand("EVAL", CompareAndDelete, 1, key, token));
        Assert.Multiple(() =>
        {
            Assert.That(wrongOwner.ToInt64(), Is.Zero);
            Assert.That(owner.ToInt64(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task EvalSha_UnknownScript_ThrowsNoScript_ThenWorksAfterScriptLoad()
    {
        string sha = (await _connection.ExecuteAsync(new RedisCommand("SCRIPT", "LOAD", "return ARGV[1]")))!.ToText()!;
        RedisResult echoed = await _connection.ExecuteAsync(new RedisCommand("EVALSHA", sha, 0, "hi"));
        Assert.That(echoed.ToText(), Is.EqualTo("hi"));

        var ex = Assert.ThrowsAsync<RedisServerException>(async () => await _connection.ExecuteAsync(new RedisCommand("EVALSHA", new string('0', 40), 0)));
        Assert.That(ex!.ErrorPrefix, Is.EqualTo("NOSCRIPT"));
    }

    [Test]
    public async Task Replies_AreTyped_IncludingNestedArrays()
    {
        string key = _prefix + "list";
        await _connection.ExecuteAsync(new RedisCommand("RPUSH", key, "a", new byte[] { 0, 255 }, 3));
        RedisResult range = await _connection.ExecuteAsync(new RedisCommand("LRANGE", key, 0, -1));
        Assert.Multiple(() =>
        {
            Assert.That(range.Type, Is.EqualTo(RedisResultType.Array));
            Assert.That(range.Elements.Select(e => e.ToArray()), Is.EqualTo(new[] { "a"u8.ToArray(), new byte[] { 0, 255 }, "3"u8.ToArray() }));
            Assert.That(range.Elements[2].ToInt64(), Is.EqualTo(3));
        });

        RedisResult multi = await _connection.ExecuteAsync(new RedisCommand("EVAL", "return {1, {'x', false}, redis.error_reply('E1 bad')}", 0));
        Assert.Multiple(() =>
        {
            Assert.That(multi.Elements[0].ToInt64(), Is.EqualTo(1));
            Assert.That(multi.Elements[1].Elements[0].ToText(), Is.EqualTo("x"));
            Assert.That(multi.Elements[1].Elements[1].IsNull, Is.True);
            Assert.That(multi.Elements[2].Type, Is.EqualTo(RedisResultType.Error));
            Assert.That(multi.Elements[2].ToText(), Is.EqualTo("E1 bad"));
        });
    }

    [Test]
    public async Task ClientNameAndDefaultDatabase_AreApplied()
    {
        await using var named = new RedisConnection(TestConnections.For(_server, c =>
        {
            c.ClientName = "cacheguard-test";
            c.DefaultDatabase = 2;
        }));
        string key = _prefix + "db2";
        await named.ExecuteAsync(new RedisCommand("SET", key, "in-two"));
        Assert.Multiple(async () =>
        {
            Assert.That((await named.ExecuteAsync(new RedisCommand("CLIENT", "GETNAME"))).ToText(), Is.EqualTo("cacheguard-test"));
            Assert.That((await _connection.ExecuteAsync(new RedisCommand("EXISTS", key))).ToInt64(), Is.Zero, "database 0 must not see it");
            Assert.That((await named.ExecuteAsync(new RedisCommand("EXISTS", key))).ToInt64(), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task Cancellation_FailsTheCaller_AndLeavesTheConnectionInStep()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAsync<TaskCanceledException>(async () => await _connection.ExecuteAsync(new RedisCommand("PING"), cts.Token));

        // A command cancelled while in flight: its late reply must be discarded, not handed to the next caller.
        await using var blocker = new RedisConnection(TestConnections.For(_server));
        await blocker.ConnectAsync();
        using var inFlight = new CancellationTokenSource();
        ValueTask<RedisResult> slow = blocker.ExecuteAsync(new RedisCommand("EVAL", "local t = redis.call('TIME'); local s = t[1] * 1000000 + t[2]; repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - s > 200000; return 'slow'", 0), inFlight.Token);
        inFlight.Cancel();
        Assert.CatchAsync<OperationCanceledException>(async () => await slow);
        RedisResult next = await blocker.ExecuteAsync(new RedisCommand("ECHO", "next"));
        Assert.That(next.ToText(), Is.EqualTo("next"));
    }

    [Test]
    public async Task PubSub_DeliversMessages_UntilUnsubscribed()
    {
        string channel = _prefix + "events";
        var received = new BlockingCollection<string>();
        RedisSubscription subscription = await _connection.SubscribeAsync(channel, (ch, payload) => received.Add(ch + "=" + Encoding.UTF8.GetString(payload.Span)));

        long receivers = await _connection.PublishAsync(channel, "hello"u8.ToArray());
        Assert.That(receivers, Is.EqualTo(1));
        Assert.That(received.TryTake(out string? message, TestConnections.Guard), Is.True);
        Assert.That(message, Is.EqualTo(channel + "=hello"));

        // Commands keep working on the interactive connection while subscribed.
        Assert.That((await _connection.ExecuteAsync(new RedisCommand("ECHO", "x"))).ToText(), Is.EqualTo("x"));

        await subscription.UnsubscribeAsync();
        Assert.That(await _connection.PublishAsync(channel, "gone"u8.ToArray()), Is.Zero);
    }

    [Test]
    public async Task PubSub_TwoHandlersOneChannel_BothReceive_AndAThrowingHandlerDoesNotStopOthers()
    {
        string channel = _prefix + "fanout";
        var first = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var second = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using RedisSubscription a = await _connection.SubscribeAsync(channel, (_, p) =>
        {
            first.TrySetResult(Encoding.UTF8.GetString(p.Span));
            throw new InvalidOperationException("handler failure");
        });
        await using RedisSubscription b = await _connection.SubscribeAsync(channel, (_, p) => second.TrySetResult(Encoding.UTF8.GetString(p.Span)));

        await _connection.PublishAsync(channel, "m"u8.ToArray());
        Assert.That(await first.Task.WaitAsync(TestConnections.Guard), Is.EqualTo("m"));
        Assert.That(await second.Task.WaitAsync(TestConnections.Guard), Is.EqualTo("m"));
    }
}
