using System.Buffers;
using System.Diagnostics.Metrics;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using CacheGuard.Internal;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace CacheGuard.Benchmarks;

/// <summary>
/// Item 2, the L2 hit: L1 misses, the value is in an in-process <see cref="IDistributedCache"/>
/// (<see cref="MemoryDistributedCache"/>), so each call reads L2, checks the envelope, deserializes the value and puts it
/// in L1. A <see cref="ManualClock"/> stepped past the 1 ms L1 lifetime before every call makes each call an L1 miss
/// without reaching into the cache; a loader that throws proves no call fell through to it, and <see cref="Setup"/>
/// counts L2 hits on the cache's own meter to prove no call was an L1 hit.
/// </summary>
/// <remarks>
/// The breakdown rows show where the time goes: the raw L2 read, and CacheGuard's serializer (System.Text.Json over
/// the same payload bytes). The two "(harness)" rows show what the manual clock costs: with a clock other than
/// <see cref="TimeProvider.System"/>, the per-read deadline's <see cref="CancellationTokenSource"/> takes the public
/// <see cref="TimeProvider.CreateTimer"/> path, slightly dearer than the runtime's internal timer an application gets.
/// </remarks>
[MemoryDiagnoser]
public class L2HitBenchmarks
{
    private const string Key = "product:42";
    private const string RawKey = "raw:product:42";
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(2);

    private readonly DistributedCacheEntryOptions _rawEntry = new() { AbsoluteExpirationRelativeToNow = TimeSpan.FromDays(1) };
    private ManualClock _clock = null!;
    private MemoryDistributedCache _l2 = null!;
    private DefaultCoalescingCache _cache = null!;
    private ScopedMeterFactory _meters = null!;
    private MemoryCache _rawL1 = null!;
    private byte[] _payload = null!;
    private IHybridCacheSerializer<Product> _serializer = null!;

    [GlobalSetup]
    public void Setup()
    {
        Product value = Product.Create(42);
        _clock = new ManualClock();
        _l2 = new MemoryDistributedCache(Options.Create(new MemoryDistributedCacheOptions()));
        _meters = new ScopedMeterFactory();
        _cache = new DefaultCoalescingCache(
            new CoalescingCacheOptions
            {
                DefaultExpiration = TimeSpan.FromDays(3650),
                DefaultLocalExpiration = TimeSpan.FromMilliseconds(1),
                JitterRatio = 0,
            },
            _l2,
            _clock,
            meterFactory: _meters);
        _cache.SetAsync(Key, value).AsTask().GetAwaiter().GetResult();

        _payload = JsonSerializer.SerializeToUtf8Bytes(value);
        _l2.Set(RawKey, _payload, _rawEntry);
        _rawL1 = new MemoryCache(new MemoryCacheOptions());
        _serializer = new SerializerRegistry(null).Get<Product>();

        // Self-check: every call below is an L2 hit (not an L1 hit, not a load) that returns the stored value.
        long l2Hits = 0;
        using (var listener = new MeterListener())
        {
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, _meters) && instrument.Name == "cacheguard.cache.hits")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            listener.SetMeasurementEventCallback<long>((_, v, tags, _) =>
            {
                foreach (KeyValuePair<string, object?> tag in tags)
                {
                    if (tag.Key == "cache.level" && (string?)tag.Value == "l2")
                    {
                        l2Hits += v;
                    }
                }
            });
            listener.Start();
            for (int i = 0; i < 3; i++)
            {
                Check(CacheGuardL2Hit().Sku == value.Sku, "CacheGuard returns the stored value");
            }
        }

        Check(l2Hits == 3, $"3 calls are 3 L2 hits (saw {l2Hits})");
        Check(RawGetAsyncAndDeserialize()!.Sku == value.Sku, "the raw baseline returns the stored value");
        Check(SerializerOnly().Sku == value.Sku, "the serializer reads the payload");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cache.Dispose();
        _rawL1.Dispose();
        _meters.Dispose();
    }

    [Benchmark(Baseline = true, Description = "IDistributedCache.GetAsync + JsonSerializer (raw)")]
    public Product? RawGetAsyncAndDeserialize()
    {
        byte[]? bytes = _l2.GetAsync(RawKey).GetAwaiter().GetResult();
        return bytes is null ? null : JsonSerializer.Deserialize<Product>(bytes);
    }

    [Benchmark(Description = "IDistributedCache.GetAsync + JsonSerializer + IMemoryCache.Set (raw two-level)")]
    public Product? RawTwoLevel()
    {
        byte[]? bytes = _l2.GetAsync(RawKey).GetAwaiter().GetResult();
        Product? value = bytes is null ? null : JsonSerializer.Deserialize<Product>(bytes);
        _rawL1.Set(RawKey, value, TimeSpan.FromMilliseconds(1));
        return value;
    }

    [Benchmark(Description = "CacheGuard GetOrLoadAsync, L2 hit")]
    public Product CacheGuardL2Hit()
    {
        _clock.Advance(Step);
        return _cache.GetOrLoadAsync(Key, 42, static (_, _) => Task.FromException<Product>(new InvalidOperationException("Expected an L2 hit, not a load."))).GetAwaiter().GetResult();
    }

    [Benchmark(Description = "(share) IDistributedCache.GetAsync alone")]
    public byte[]? L2ReadOnly() => _l2.GetAsync(Key).GetAwaiter().GetResult();

    [Benchmark(Description = "(share) CacheGuard's serializer alone")]
    public Product SerializerOnly() => _serializer.Deserialize(new ReadOnlySequence<byte>(_payload));

    [Benchmark(Description = "(share) JsonSerializer.Deserialize from the span (the same payload)")]
    public Product? SerializerFromSpan() => JsonSerializer.Deserialize<Product>(_payload);

    [Benchmark(Description = "(harness) deadline CTS, system clock")]
    public bool DeadlineOnSystemClock()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2), TimeProvider.System);
        return cts.IsCancellationRequested;
    }

    [Benchmark(Description = "(harness) deadline CTS, manual clock")]
    public bool DeadlineOnManualClock()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2), _clock);
        return cts.IsCancellationRequested;
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException("Benchmark self-check failed: " + what + ".");
        }
    }
}
