using System.Buffers;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Redis.Tests;

public class DistributedCacheTests
{
    private RedisServer _server = null!;
    private RedisConnection _connection = null!;
    private RedisDistributedCache _cache = null!;
    private string _prefix = null!;

    [OneTimeSetUp]
    public async Task StartServer()
    {
        _server = await RedisServer.AcquireSharedAsync();
        _connection = new RedisConnection(TestConnections.For(_server));
        await _connection.ConnectAsync();
    }

    [OneTimeTearDown]
    public async Task StopServer()
    {
        await _connection.DisposeAsync();
        await _server.DisposeAsync();
    }

    [SetUp]
    public void NewCache()
    {
        _prefix = "dc-" + Guid.NewGuid().ToString("N")[..8] + ":";
        _cache = new RedisDistributedCache(_connection, _prefix);
    }

    [Test]
    public async Task GetAsync_MissingKey_ReturnsNull()
    {
        Assert.That(await _cache.GetAsync("missing"), Is.Null);
    }

    [Test]
    public async Task SetAsyncThenGetAsync_ReturnsTheBytes_AndRemoveAsyncDeletes()
    {
        await _cache.SetAsync("k", [1, 2, 3], new DistributedCacheEntryOptions());
        Assert.That(await _cache.GetAsync("k"), Is.EqualTo(new byte[] { 1, 2, 3 }));

        await _cache.RemoveAsync("k");
        Assert.That(await _cache.GetAsync("k"), Is.Null);
    }

    [Test]
    public void SynchronousMembers_Work()
    {
        _cache.Set("s", [9], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromMinutes(1) });
        Assert.That(_cache.Get("s"), Is.EqualTo(new byte[] { 9 }));
        _cache.Refresh("s");
        var writer = new ArrayBufferWriter<byte>();
        Assert.That(_cache.TryGet("s", writer), Is.True);
        Assert.That(writer.WrittenSpan.ToArray(), Is.EqualTo(new byte[] { 9 }));
        _cache.Remove("s");
        Assert.Multiple(() =>
        {
            Assert.That(_cache.Get("s"), Is.Null);
            Assert.That(_cache.TryGet("s", new ArrayBufferWriter<byte>()), Is.False);
        });
    }

    [Test]
    public async Task BufferMembers_WriteAMultiSegmentSequence_AndReadIntoABufferWriter()
    {
        byte[] first = [1, 2, 3], second = [4, 5];
        var start = new Segment(first);
        Segment end = start.Append(second);
        var sequence = new ReadOnlySequence<byte>(start, 0, end, second.Length);
        Assert.That(sequence.IsSingleSegment, Is.False);

        await ((IBufferDistributedCache)_cache).SetAsync("seq", sequence, new DistributedCacheEntryOptions());

        var writer = new ArrayBufferWriter<byte>();
        writer.Write(new byte[] { 0xEE }); // existing content must be kept: TryGet appends
        Assert.That(await _cache.TryGetAsync("seq", writer), Is.True);
        Assert.That(writer.WrittenSpan.ToArray(), Is.EqualTo(new byte[] { 0xEE, 1, 2, 3, 4, 5 }));
        Assert.That(await _cache.TryGetAsync("nope", writer), Is.False);
        Assert.That(writer.WrittenCount, Is.EqualTo(6));
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(1024 * 1024)]
    [TestCase(16 * 1024 * 1024)]
    public async Task BinaryValues_RoundTripExactly(int size)
    {
        byte[] value = new byte[size];
        new Random(size).NextBytes(value);
        await _cache.SetAsync("bin", value, new DistributedCacheEntryOptions());

        byte[]? read = await _cache.GetAsync("bin");
        Assert.That(read, Is.Not.Null);
        Assert.That(read!.AsSpan().SequenceEqual(value), Is.True, $"{size} bytes came back different");

        var writer = new ArrayBufferWriter<byte>();
        Assert.That(await _cache.TryGetAsync("bin", writer), Is.True);
        Assert.That(writer.WrittenSpan.SequenceEqual(value), Is.True);
    }

    [TestCase("with space")]
    [TestCase("quote\"and'apostrophe")]
    [TestCase("new\r\nline")]
    [TestCase("ключ-鍵-🔑")]
    [TestCase("$5\r\nfake")]
    public async Task OddKeys_AreBinarySafe(string key)
    {
        await _cache.SetAsync(key, [42], new DistributedCacheEntryOptions());
        Assert.That(await _cache.GetAsync(key), Is.EqualTo(new byte[] { 42 }));
        RedisResult exists = await _connection.ExecuteAsync(new RedisCommand("EXISTS", _prefix + key));
        Assert.That(exists.ToInt64(), Is.EqualTo(1));
        await _cache.RemoveAsync(key);
        Assert.That(await _cache.GetAsync(key), Is.Null);
    }

    [Test]
    public async Task AbsoluteExpiration_SetsTheTtl_AndTheServerExpiresTheEntry()
    {
        await _cache.SetAsync("abs", [1], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(100) });
        Assert.That(await TestConnections.TtlAsync(_connection, _prefix + "abs"), Is.InRange(98, 100));

        await _cache.SetAsync("short", [1], new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(1) });
        RedisResult pttl = await _connection.ExecuteAsync(new RedisCommand("PTTL", _prefix + "short"));
        Assert.That(pttl.ToInt64(), Is.InRange(1, 1000));

        // The server decides; the loop only waits for it, bounded by a deadline.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (await _cache.GetAsync("short") is not null)
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the entry outlived its 1 s expiration");
            await Task.Delay(50);
        }
    }

    [Test]
    public async Task AbsoluteExpirationInThePast_Throws()
    {
        var options = new DistributedCacheEntryOptions { AbsoluteExpiration = DateTimeOffset.UtcNow.AddMinutes(-1) };
        Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _cache.SetAsync("past", [1], options));
        Assert.That(await _cache.GetAsync("past"), Is.Null);
    }

    [Test]
    public async Task SlidingExpiration_GetResetsTheTtl()
    {
        string key = _prefix + "sld";
        await _cache.SetAsync("sld", [7], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(300) });
        Assert.That(await TestConnections.TtlAsync(_connection, key), Is.InRange(298, 300));

        await _connection.ExecuteAsync(new RedisCommand("EXPIRE", key, 10));
        Assert.That(await _cache.GetAsync("sld"), Is.EqualTo(new byte[] { 7 }));
        Assert.That(await TestConnections.TtlAsync(_connection, key), Is.InRange(298, 300));

        await _connection.ExecuteAsync(new RedisCommand("EXPIRE", key, 10));
        await _cache.RefreshAsync("sld");
        Assert.That(await TestConnections.TtlAsync(_connection, key), Is.InRange(298, 300));

        await _connection.ExecuteAsync(new RedisCommand("EXPIRE", key, 10));
        Assert.That(await _cache.TryGetAsync("sld", new ArrayBufferWriter<byte>()), Is.True);
        Assert.That(await TestConnections.TtlAsync(_connection, key), Is.InRange(298, 300));
    }

    [Test]
    public async Task SlidingWithAbsolute_TtlIsCappedByTheAbsoluteExpiration()
    {
        string key = _prefix + "both";
        await _cache.SetAsync("both", [1], new DistributedCacheEntryOptions
        {
            SlidingExpiration = TimeSpan.FromSeconds(300),
            AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(100),
        });
        Assert.That(await TestConnections.TtlAsync(_connection, key), Is.InRange(98, 100));

        await _connection.ExecuteAsync(new RedisCommand("EXPIRE", key, 10));
        await _cache.GetAsync("both");
        Assert.That(await TestConnections.TtlAsync(_connection, key), Is.InRange(98, 100));
    }

    [Test]
    public async Task NoExpiration_LeavesNoTtl_AndRefreshKeepsIt()
    {
        await _cache.SetAsync("forever", [1], new DistributedCacheEntryOptions());
        await _cache.RefreshAsync("forever");
        Assert.That(await TestConnections.TtlAsync(_connection, _prefix + "forever"), Is.EqualTo(-1));
    }

    [Test]
    public async Task GetManyAsync_ReturnsPayloadsInKeyOrder_NullForMissing_AndRefreshesSlidingEntries()
    {
        await _cache.SetAsync("a", [1], new DistributedCacheEntryOptions());
        await _cache.SetAsync("c", [3], new DistributedCacheEntryOptions { SlidingExpiration = TimeSpan.FromSeconds(300) });
        await _connection.ExecuteAsync(new RedisCommand("EXPIRE", _prefix + "c", 10));

        byte[]?[] values = await _cache.GetManyAsync(["a", "b", "c", "a"]);

        Assert.That(values, Is.EqualTo(new byte[]?[] { [1], null, [3], [1] }));
        Assert.That(await TestConnections.TtlAsync(_connection, _prefix + "c"), Is.InRange(298, 300));
        Assert.That(await _cache.GetManyAsync([]), Is.Empty);
    }

    [Test]
    public async Task WrongTypeKey_Throws_RedisServerException()
    {
        await _connection.ExecuteAsync(new RedisCommand("SET", _prefix + "str", "plain string"));
        var ex = Assert.ThrowsAsync<RedisServerException>(() => _cache.GetAsync("str"));
        Assert.That(ex!.ErrorPrefix, Is.EqualTo("WRONGTYPE"));

        // The connection is still in step after an error reply.
        await _cache.SetAsync("ok", [5], new DistributedCacheEntryOptions());
        Assert.That(await _cache.GetAsync("ok"), Is.EqualTo(new byte[] { 5 }));
    }

    [Test]
    public async Task SixtyFourCallers_TenThousandRandomOperationsEach_EveryReplyMatchesItsRequest()
    {
        const int callers = 64;
        const int operations = 10_000;
        var options = new DistributedCacheEntryOptions();

        async Task RunCaller(int caller)
        {
            var random = new Random(caller);
            var expected = new byte[]?[16]; // this caller's own keys, so the expected state is exact
            for (int i = 0; i < operations; i++)
            {
                int slot = random.Next(expected.Length);
                string key = $"c{caller}:k{slot}";
                switch (random.Next(3))
                {
                    case 0:
                        byte[] value = new byte[random.Next(1, 64)];
                        random.NextBytes(value);
                        value[0] = (byte)caller; // a reply routed to the wrong caller shows up here
                        await _cache.SetAsync(key, value, options);
                        expected[slot] = value;
                        break;
                    case 1:
                        byte[]? read = await _cache.GetAsync(key);
                        if (!(read is null ? expected[slot] is null : expected[slot] is not null && read.AsSpan().SequenceEqual(expected[slot])))
                        {
                            Assert.Fail($"caller {caller} op {i}: GET {key} returned {Describe(read)}, expected {Describe(expected[slot])}");
                        }

                        break;
                    default:
                        await _cache.RemoveAsync(key);
                        expected[slot] = null;
                        break;
                }
            }
        }

        Task[] tasks = new Task[callers];
        for (int c = 0; c < callers; c++)
        {
            int caller = c;
            tasks[c] = Task.Run(() => RunCaller(caller));
        }

        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(90));
    }

    private static string Describe(byte[]? value) => value is null ? "null" : $"{value.Length} bytes starting {value[0]}";

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
