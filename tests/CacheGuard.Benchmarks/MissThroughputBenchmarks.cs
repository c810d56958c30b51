using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using ZiggyCreatures.Caching.Fusion;

namespace CacheGuard.Benchmarks;

/// <summary>
/// Miss throughput: 100,000 distinct keys (10,000 in <c>--quick</c>), each loaded once, by 2 workers (each takes half the keys), into a fresh
/// cache per iteration (a new service provider for the libraries). The loader completes synchronously and returns one
/// shared instance, so no row pays to build the value. The raw row is cache-aside by hand over
/// <see cref="IMemoryCache"/>: <c>TryGetValue</c>, then <c>Set</c> with the L1 lifetime. BenchmarkDotNet's mean and
/// allocation are per invocation (all the keys); the report divides them by <see cref="Keys"/>.
/// </summary>
/// <remarks>
/// Each library is called the way its API asks: CacheGuard's loader returns a <see cref="Task{TResult}"/>
/// (<c>Task.FromResult</c>, 72 B, counted), HybridCache's factory a <see cref="ValueTask{TResult}"/> (nothing),
/// FusionCache's factory a <see cref="Task{TResult}"/>. After each iteration a sample of keys is read back with a
/// loader that throws, so every row is known to have cached what it loaded.
/// </remarks>
[MemoryDiagnoser]
[InvocationCount(1)]
public class MissThroughputBenchmarks
{
    public const int Workers = 2;

    /// <summary>Set by <c>--quick</c> for this process and the ones BenchmarkDotNet starts: fewer keys.</summary>
    public const string QuickVariable = "CACHEGUARD_BENCHMARKS_QUICK";

    private static readonly Product Value = Product.Create(42);
    private string[] _keys = [];
    private MemoryCache? _memory;
    private BareSingleFlight<Product>? _bare;
    private ServiceProvider? _services;
    private ICoalescingCache? _cacheGuard;
    private HybridCache? _hybrid;
    private IFusionCache? _fusion;

    /// <summary>Keys per invocation: 100,000, or 10,000 in a quick run.</summary>
    public static int KeyCount => Environment.GetEnvironmentVariable(QuickVariable) == "1" ? 10_000 : 100_000;

    public static IEnumerable<int> KeyCounts => [KeyCount];

    [ParamsSource(nameof(KeyCounts))]
    public int Keys { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _keys = new string[Keys];
        for (int i = 0; i < Keys; i++)
        {
            _keys[i] = "product:" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    [IterationSetup(Target = nameof(Raw_Miss))]
    public void SetupRaw() => _memory = new MemoryCache(new MemoryCacheOptions());

    [IterationCleanup(Target = nameof(Raw_Miss))]
    public void CleanupRaw()
    {
        Check(_memory!.Count == Keys, $"every key is cached once (count {_memory.Count})");
        _memory.Dispose();
        _memory = null;
    }

    [IterationSetup(Target = nameof(BareSingleFlight_Miss))]
    public void SetupBare()
    {
        _memory = new MemoryCache(new MemoryCacheOptions());
        _bare = new BareSingleFlight<Product>(_memory, Peers.L1Expiration);
    }

    [IterationCleanup(Target = nameof(BareSingleFlight_Miss))]
    public void CleanupBare()
    {
        Check(_memory!.Count == Keys, $"every key is cached once (count {_memory.Count})");
        _memory.Dispose();
        _memory = null;
        _bare = null;
    }

    [IterationSetup(Target = nameof(CacheGuard_Miss))]
    public void SetupCacheGuard()
    {
        _services = Peers.CacheGuard();
        _cacheGuard = _services.GetRequiredService<ICoalescingCache>();
    }

    [IterationCleanup(Target = nameof(CacheGuard_Miss))]
    public void CleanupCacheGuard() => Cleanup(key => _cacheGuard!.GetOrLoadAsync<int, Product>(key, 0, static (_, _) => throw new InvalidOperationException("not cached")).AsTask());

    [IterationSetup(Target = nameof(HybridCache_Miss))]
    public void SetupHybrid()
    {
        _services = Peers.Hybrid();
        _hybrid = _services.GetRequiredService<HybridCache>();
    }

    [IterationCleanup(Target = nameof(HybridCache_Miss))]
    public void CleanupHybrid() => Cleanup(key => _hybrid!.GetOrCreateAsync<int, Product>(key, 0, static (_, _) => throw new InvalidOperationException("not cached")).AsTask());

    [IterationSetup(Target = nameof(FusionCache_Miss))]
    public void SetupFusion()
    {
        _services = Peers.Fusion();
        _fusion = _services.GetRequiredService<IFusionCache>();
    }

    [IterationCleanup(Target = nameof(FusionCache_Miss))]
    public void CleanupFusion() => Cleanup(key => _fusion!.GetOrSetAsync<Product>(key, static (_, _) => throw new InvalidOperationException("not cached")).AsTask());

    [Benchmark(Baseline = true)]
    public void Raw_Miss() => RunWorkers(static (self, from, to) =>
    {
        MemoryCache memory = self._memory!;
        string[] keys = self._keys;
        for (int i = from; i < to; i++)
        {
            if (!memory.TryGetValue(keys[i], out Product? value))
            {
                memory.Set(keys[i], Value, Peers.L1Expiration);
            }
        }
    });

    /// <summary>A reference, not a peer: cache-aside plus the least a working singleflight does (<see cref="BareSingleFlight{T}"/>).</summary>
    [Benchmark]
    public void BareSingleFlight_Miss() => RunWorkers(static (self, from, to) =>
    {
        BareSingleFlight<Product> bare = self._bare!;
        string[] keys = self._keys;
        for (int i = from; i < to; i++)
        {
            _ = bare.GetOrLoadAsync(keys[i], static _ => Task.FromResult(Value)).GetAwaiter().GetResult();
        }
    });

    [Benchmark]
    public void CacheGuard_Miss() => RunWorkers(static (self, from, to) =>
    {
        ICoalescingCache cache = self._cacheGuard!;
        string[] keys = self._keys;
        for (int i = from; i < to; i++)
        {
            _ = cache.GetOrLoadAsync(keys[i], 0, static (_, _) => Task.FromResult(Value)).GetAwaiter().GetResult();
        }
    });

    [Benchmark]
    public void HybridCache_Miss() => RunWorkers(static (self, from, to) =>
    {
        HybridCache cache = self._hybrid!;
        string[] keys = self._keys;
        for (int i = from; i < to; i++)
        {
            _ = cache.GetOrCreateAsync(keys[i], 0, static (_, _) => new ValueTask<Product>(Value)).GetAwaiter().GetResult();
        }
    });

    [Benchmark]
    public void FusionCache_Miss() => RunWorkers(static (self, from, to) =>
    {
        IFusionCache cache = self._fusion!;
        string[] keys = self._keys;
        for (int i = from; i < to; i++)
        {
            _ = cache.GetOrSetAsync<Product>(keys[i], static (_, _) => Task.FromResult(Value)).GetAwaiter().GetResult();
        }
    });

    private void RunWorkers(Action<MissThroughputBenchmarks, int, int> work)
    {
        int half = Keys / Workers;
        Task other = Task.Run(() => work(this, half, Keys));
        work(this, 0, half);
        other.GetAwaiter().GetResult();
    }

    /// <summary>Reads back every 1,000th key with a loader that throws (so each must be a hit), then drops the provider.</summary>
    private void Cleanup(Func<string, Task<Product>> read)
    {
        for (int i = 0; i < Keys; i += 100)
        {
            Check(read(_keys[i]).GetAwaiter().GetResult() is not null, "the key loaded in the iteration is cached");
        }

        _services!.Dispose();
        _services = null;
        _cacheGuard = null;
        _hybrid = null;
        _fusion = null;
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException("Benchmark self-check failed: " + what + ".");
        }
    }
}
