using System.Diagnostics;
using System.Globalization;
using CacheGuard;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>The Redis backplane: L1 coherence across nodes that share one real redis-server.</summary>
public class BackplaneTests
{
    private const int CoreLocalCacheClearedId = 16; // CacheGuard's core: "dropped the whole local cache"

    private static readonly Func<CancellationToken, Task<string>> MustNotLoad =
        static _ => throw new AssertionException("the value should have come from L1 or L2, not the loader");

    [Test]
    public async Task ThreeNodes_AfterASetsANewValue_BAndCServeItOnTheirNextReads_PropagationMeasuredOver1000Updates()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using Node a = await Node.StartAsync(server, build: static b => b.WithBackplane());
        await using Node b = await Node.StartAsync(server, build: static b => b.WithBackplane());
        await using Node c = await Node.StartAsync(server, build: static b => b.WithBackplane());
        await Task.WhenAll(a.Backplane.WhenSubscribed, b.Backplane.WhenSubscribed, c.Backplane.WhenSubscribed).WaitAsync(TestRedis.Guard);

        await a.Cache.SetAsync("price", "v0");
        Assert.That(await b.Cache.GetOrLoadAsync("price", MustNotLoad), Is.EqualTo("v0"));
        Assert.That(await c.Cache.GetOrLoadAsync("price", MustNotLoad), Is.EqualTo("v0"));

        const int Updates = 1000;
        var micros = new double[Updates];
        for (int i = 1; i <= Updates; i++)
        {
            string value = "v" + i.ToString(CultureInfo.InvariantCulture);
            long start = Stopwatch.GetTimestamp();
            await a.Cache.SetAsync("price", value);
            bool seenByB = false, seenByC = false;
            for (int poll = 0; poll < 1_000_000 && !(seenByB && seenByC); poll++)
            {
                seenByB = seenByB || await b.Cache.GetOrLoadAsync("price", MustNotLoad) == value;
                seenByC = seenByC || await c.Cache.GetOrLoadAsync("price", MustNotLoad) == value;
                if (Stopwatch.GetElapsedTime(start) > TimeSpan.FromSeconds(5))
                {
                    Assert.Fail($"update {i}: B saw it: {seenByB}, C saw it: {seenByC}, after 5 s");
                }

                await Task.Yield();
            }

            micros[i - 1] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            Assert.That(await a.Cache.GetOrLoadAsync("price", MustNotLoad), Is.EqualTo(value), "the writer serves its own value (its own message is ignored)");
        }

        Array.Sort(micros);
        string report = string.Create(CultureInfo.InvariantCulture,
            $"backplane propagation, SetAsync on A until both B and C serve the new value, {Updates} updates: p50 {micros[Updates / 2] / 1000:0.000} ms, p99 {micros[(Updates * 99 / 100) - 1] / 1000:0.000} ms, max {micros[^1] / 1000:0.000} ms");
        TestContext.Progress.WriteLine(report);
        TestContext.Out.WriteLine(report);
        Assert.That(a.Backplane.MessagesPublished, Is.GreaterThan(0).And.LessThanOrEqualTo(Updates + 1));
    }

    [Test]
    public async Task RemoveAndRemoveByTag_OnOneNode_EvictFromTheOthers()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        static void Configure(CoalescingCacheOptions o) => o.TagCheckInterval = TimeSpan.FromHours(1); // only the backplane can tell B
        await using Node a = await Node.StartAsync(server, Configure, static b => b.WithBackplane());
        await using Node b = await Node.StartAsync(server, Configure, static b => b.WithBackplane());
        await Task.WhenAll(a.Backplane.WhenSubscribed, b.Backplane.WhenSubscribed).WaitAsync(TestRedis.Guard);

        var tagged = new CacheEntryOptions { Tags = ["orders"] };
        Assert.That(await b.Cache.GetOrLoadAsync("order:1", static _ => Task.FromResult("first"), tagged), Is.EqualTo("first"));
        Assert.That(await b.Cache.GetOrLoadAsync("plain", static _ => Task.FromResult("first"), null), Is.EqualTo("first"));

        await a.Cache.RemoveByTagAsync("orders");
        await a.Cache.RemoveAsync("plain");

        await Eventually.HoldsAsync(async () => await b.Cache.GetOrLoadAsync("order:1", static _ => Task.FromResult("second"), tagged) == "second", "B drops the tagged entry");
        await Eventually.HoldsAsync(async () => await b.Cache.GetOrLoadAsync("plain", static _ => Task.FromResult("second")) == "second", "B drops the removed key");
    }

    [Test]
    public async Task Messages_ReachOtherInstancesOfTheSameCache_NotTheSenderNorOtherCaches()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using ConnectionMultiplexer one = await TestRedis.ConnectAsync(server);
        await using ConnectionMultiplexer two = await TestRedis.ConnectAsync(server);
        await using var first = new RedisBackplane(one, "bp");
        await using var second = new RedisBackplane(two, "bp");
        var sender = new RecordingSink("node-1");
        var sameCache = new RecordingSink("node-2");
        var otherCache = new RecordingSink("node-2-other");
        using IDisposable s1 = first.Subscribe("orders", sender);
        using IDisposable s2 = second.Subscribe("orders", sameCache);
        using IDisposable s3 = second.Subscribe("users", otherCache);
        await Task.WhenAll(first.WhenSubscribed, second.WhenSubscribed).WaitAsync(TestRedis.Guard);

        await first.PublishAsync(new CacheInvalidation("orders", "o:1", null), CancellationToken.None);
        await first.PublishAsync(new CacheInvalidation("orders", null, "tag"), CancellationToken.None);

        // Both subscribers get every message, in order: once each saw both, every delivery has happened.
        await Eventually.HoldsAsync(() => sameCache.ReceivedCount == 2, "the other instance of 'orders' gets both");
        await Eventually.HoldsAsync(() => first.MessagesReceived >= first.MessagesPublished && first.MessagesPublished > 0, "the sender saw its own messages come back");
        Assert.Multiple(() =>
        {
            Assert.That(sameCache.Received, Is.EqualTo(new[] { new CacheInvalidation("orders", "o:1", null), new CacheInvalidation("orders", null, "tag") }));
            Assert.That(sender.ReceivedCount, Is.Zero, "a node ignores its own messages");
            Assert.That(otherCache.ReceivedCount, Is.Zero, "another cache's messages are not delivered");
        });
    }

    [Test]
    public async Task BurstOfInvalidations_IsBatched_IntoMessagesOfAtMost64KB()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using ConnectionMultiplexer one = await TestRedis.ConnectAsync(server);
        await using ConnectionMultiplexer two = await TestRedis.ConnectAsync(server);
        await using var first = new RedisBackplane(one, "bp");
        await using var second = new RedisBackplane(two, "bp");
        var receiver = new RecordingSink("receiver");
        using IDisposable subscription = second.Subscribe("orders", receiver);
        await second.WhenSubscribed.WaitAsync(TestRedis.Guard);
        var sizes = new System.Collections.Concurrent.ConcurrentQueue<int>();
        ChannelMessageQueue raw = await two.GetSubscriber().SubscribeAsync(RedisChannel.Literal("bp"));
        raw.OnMessage(message => sizes.Enqueue(((byte[])message.Message!).Length));

        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        first.HoldWriter = hold.Task;
        const int Count = 5000;
        string padding = new('x', 100);
        for (int i = 0; i < Count; i++)
        {
            await first.PublishAsync(new CacheInvalidation("orders", padding + i.ToString(CultureInfo.InvariantCulture), null), CancellationToken.None);
        }

        hold.SetResult();
        await Eventually.HoldsAsync(() => receiver.ReceivedCount == Count, "every invalidation arrives");

        IReadOnlyList<CacheInvalidation> received = receiver.Received;
        Assert.Multiple(() =>
        {
            Assert.That(received.Select(r => r.Key), Is.EqualTo(Enumerable.Range(0, Count).Select(i => padding + i.ToString(CultureInfo.InvariantCulture))), "in order, none lost");
            Assert.That(first.MessagesPublished, Is.InRange(9, 20), "~550 KB of invalidations in 64 KB messages");
            Assert.That(sizes, Has.All.LessThanOrEqualTo(BackplaneMessage.MaxBytes));
        });
        TestContext.Progress.WriteLine($"{Count} invalidations went out in {first.MessagesPublished} messages (largest {sizes.Max()} bytes)");
    }

    [Test]
    public async Task MalformedMessages_AreLoggedAndDropped_AndTheSubscriberKeepsWorking()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using Node a = await Node.StartAsync(server, build: static b => b.WithBackplane());
        await using Node b = await Node.StartAsync(server, build: static b => b.WithBackplane());
        await Task.WhenAll(a.Backplane.WhenSubscribed, b.Backplane.WhenSubscribed).WaitAsync(TestRedis.Guard);
        string channel = b.Backplane.Channel;
        Assert.That(channel, Is.EqualTo("fleet:__cacheguard:invalidations"));

        byte[] valid = BackplaneMessage.Encode("someone", [new CacheInvalidation(string.Empty, "k", null)]);
        byte[][] garbage =
        [
            [],
            [0xFF, 1, 2, 3],                          // unknown version
            valid[..^1],                               // truncated
            [.. valid, 0],                             // trailing byte
            [1, 3, (byte)'a', 0xC3, 0x28, 0],          // sender is not UTF-8
            [1, 1, (byte)'a', 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], // absurd entry count
            new byte[BackplaneMessage.MaxBytes + 1],   // too large
        ];
        foreach (byte[] payload in garbage)
        {
            await a.Multiplexer.GetSubscriber().PublishAsync(RedisChannel.Literal(channel), payload);
        }

        await Eventually.HoldsAsync(() => b.Backplane.MessagesDropped == garbage.Length, "every bad message is dropped");
        Assert.That(b.Logs.Count(Log.BackplaneMessageMalformedId), Is.EqualTo(garbage.Length));

        Assert.That(await b.Cache.GetOrLoadAsync("k", static _ => Task.FromResult("old")), Is.EqualTo("old"));
        await a.Cache.SetAsync("k", "new");
        await Eventually.HoldsAsync(async () => await b.Cache.GetOrLoadAsync("k", MustNotLoad) == "new", "B still applies valid messages");
    }

    [Test]
    public async Task LostSubscription_OnReconnect_TheNodeDropsItsWholeL1_AndLogsIt()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using Node reader = await Node.StartAsync(server, build: static b => b.WithBackplane());
        await using Node silentWriter = await Node.StartAsync(server); // no backplane: its writes are never announced
        await reader.Backplane.WhenSubscribed.WaitAsync(TestRedis.Guard);
        var restored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        reader.Multiplexer.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Subscription)
            {
                restored.TrySetResult();
            }
        };

        Assert.That(await reader.Cache.GetOrLoadAsync("k", static _ => Task.FromResult("v1")), Is.EqualTo("v1"));
        await silentWriter.Cache.SetAsync("k", "v2");
        Assert.That(await reader.Cache.GetOrLoadAsync("k", MustNotLoad), Is.EqualTo("v1"), "unannounced: the reader's L1 still holds v1");

        await server.CliAsync("CLIENT", "KILL", "TYPE", "pubsub");
        await restored.Task.WaitAsync(TestRedis.Guard);

        await Eventually.HoldsAsync(async () => await reader.Cache.GetOrLoadAsync("k", MustNotLoad) == "v2", "after the reconnect the reader re-reads L2");
        Assert.That(reader.Logs.Count(Log.BackplaneSubscriptionRestoredId), Is.EqualTo(1));
        await Eventually.HoldsAsync(() => reader.Logs.Count(CoreLocalCacheClearedId) == 2, "the L1 is dropped on the restore, and again once the subscriber answers after resubscribing");
        Assert.That(reader.Logs.Count(Log.BackplaneResubscribeUnconfirmedId), Is.Zero);
        Assert.That(reader.Logs.Count(Log.BackplaneSubscriptionLostId), Is.EqualTo(1));
    }

    [Test]
    public async Task RedisDown_WritesNeverFailCallers_AndQueuedInvalidationsArePublishedAfterTheRestart()
    {
        await using RedisServer server = await RedisServer.StartAsync();
        await using Node a = await Node.StartAsync(server, o => o.DistributedCacheTimeout = TimeSpan.FromSeconds(1), static b => b.WithBackplane());
        await a.Backplane.WhenSubscribed.WaitAsync(TestRedis.Guard);
        var restored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Multiplexer.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive)
            {
                restored.TrySetResult();
            }
        };

        await server.KillAsync();
        long publishedBefore = a.Backplane.MessagesPublished;
        var errors = new List<Exception>();
        for (int i = 0; i < 50; i++)
        {
            try
            {
                await a.Cache.SetAsync($"k{i}", i);
                await a.Cache.RemoveAsync($"r{i}");
                await a.Cache.RemoveByTagAsync($"t{i}");
                Assert.That(await a.Cache.GetOrLoadAsync($"k{i}", static _ => Task.FromResult(-1)), Is.EqualTo(i));
            }
            catch (Exception ex) when (ex is not AssertionException)
            {
                errors.Add(ex);
            }
        }

        Assert.That(errors, Is.Empty, "no caller sees the backplane's (or L2's) failures");
        await server.RestartAsync();
        await restored.Task.WaitAsync(TestRedis.Guard);
        await Eventually.HoldsAsync(() => a.Backplane.MessagesPublished > publishedBefore, "the queued invalidations go out once Redis is back");
        Assert.That(a.Logs.Count(Log.BackplanePublishFailedId), Is.GreaterThanOrEqualTo(1));
    }

    [Test]
    public void WithBackplane_WithNoRedisRegisteredAnywhere_FailsWhenTheCacheIsCreated_NamingTheFix()
    {
        var services = new ServiceCollection();
        services.AddCoalescingCache().WithBackplane();
        using ServiceProvider provider = services.BuildServiceProvider();
        var ex = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<ICoalescingCache>());
        Assert.That(ex!.Message, Does.Contain("WithRedis").And.Contain("AddStackExchangeRedisCache"));
    }

    [Test]
    public void Codec_RoundTripsKeysTagsAndClears()
    {
        CacheInvalidation[] entries =
        [
            new("orders", "o:1", null),
            new("orders", null, "tag:é"),
            new("users", null, null),
            new(string.Empty, new string('k', 300), null),
        ];
        byte[] payload = BackplaneMessage.Encode("node-1", entries);
        var decoded = new List<CacheInvalidation>();
        Assert.That(BackplaneMessage.TryDecode(payload, out string sender, decoded, out string? error), Is.True, error);
        Assert.That(sender, Is.EqualTo("node-1"));
        Assert.That(decoded, Is.EqualTo(entries));
    }
}
