using CacheGuard;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>End to end: a write queued while one node was cut off from Redis, replayed when it is back.</summary>
public class ReplayTests
{
    private const int CorePendingWritesReplayedId = 15; // CacheGuard's core event: queued L2 writes replayed

    [Test]
    public async Task WriteQueuedWhileCutOff_IsReplayedWhenTheNodeIsBack()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        await using var proxy = new TcpProxy(server.Port);
        string instance = TestRedis.UniquePrefix("replay");
        await using Node cutOff = await Node.StartAsync(TestRedis.Options(server, o => Redirect(o, proxy)), instance);
        await using Node reader = await Node.StartAsync(TestRedis.Options(server), instance);

        proxy.Cut();
        await Eventually.HoldsAsync(() => !cutOff.Multiplexer.IsConnected, "the node is cut off");
        await cutOff.Cache.SetAsync("k", "written while cut off");
        proxy.Restore();
        await Eventually.HoldsAsync(() => cutOff.Logs.Count(CorePendingWritesReplayedId) == 1, "the queued write is replayed");
        Assert.That((await server.CliAsync("EXISTS", instance + "k")).Trim(), Is.EqualTo("1"));
        Assert.That(await reader.Cache.GetOrLoadAsync<string>("k", static _ => throw new AssertionException("should come from L2")), Is.EqualTo("written while cut off"));
    }

    [Test]
    public async Task WriteQueuedWhileCutOff_DoesNotOverwriteANewerWriteByAnotherNode()
    {
        RedisServer server = await SharedRedis.PlainAsync();
        await using var proxy = new TcpProxy(server.Port);
        string instance = TestRedis.UniquePrefix("replay");
        await using Node cutOff = await Node.StartAsync(TestRedis.Options(server, o => Redirect(o, proxy)), instance);
        await using Node other = await Node.StartAsync(TestRedis.Options(server), instance);

        proxy.Cut();
        await Eventually.HoldsAsync(() => !cutOff.Multiplexer.IsConnected, "the node is cut off");
        await cutOff.Cache.SetAsync("k", "older, queued");
        await other.Cache.SetAsync("k", "newer, in Redis");
        proxy.Restore();
        await Eventually.HoldsAsync(() => cutOff.Multiplexer.IsConnected && cutOff.Logs.Entries.Any(e => e.Id.Id == CorePendingWritesReplayedId || e.Message.Contains("replay", StringComparison.OrdinalIgnoreCase)), "the node is back and has dealt with its queue");

        await using Node fresh = await Node.StartAsync(TestRedis.Options(server), instance);
        Assert.That(await fresh.Cache.GetOrLoadAsync<string>("k", static _ => throw new AssertionException("should come from L2")), Is.EqualTo("newer, in Redis"));
    }

    private static void Redirect(ConfigurationOptions options, TcpProxy proxy)
    {
        options.EndPoints.Clear();
        options.EndPoints.Add("127.0.0.1", proxy.Port);
    }
}
