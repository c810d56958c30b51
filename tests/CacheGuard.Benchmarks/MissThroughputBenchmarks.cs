using BenchmarkDotNet.Attributes;
using CacheGuard.Internal;
using Microsoft.Extensions.Caching.Memory;

namespace CacheGuard.Benchmarks;

/// <summary>
/// Item 5, miss throughput: 100,000 distinct keys, each loaded once, by 2 workers (each takes half the keys), into a
/// fresh cache per iteration. The loader completes synchronously. The baseline is cache-aside by hand over
/// <see cref="IMemoryCache"/>: <c>TryGetValue</c>, then <c>Set</c> with an absolute expiration, as CacheGuard writes
/// its L1. One "op" is one key; the ops/s column is 10^9 / mean ns.
/// </summary>
/// <remarks>
/// CacheGuard's loader returns <c>Task.FromResult(value)</c>, a new <see cref="Task{TResult}"/> per call: that is what a
/// synchronous loader must return through a <c>Func&lt;..., Task&lt;T&gt;&gt;</c>, so its bytes count. The value
/// itself is one shared instance on both sides, so neither pays to build it. CacheGuard runs with its defaults
/// (10% jitter, no L2, no metrics listener).
/// </remarks>
[MemoryDiagnoser]
[InvocationCount(1)]
public class MissThroughputBenchmarks
{
    public const int Keys = 100_000;
    public const int Workers = 2;

    private static readonly TimeSpan Expiration = TimeSpan.FromMinutes(5);

    private readonly string[] _keys = new string[Keys];
    private Product _value = null!;
    private MemoryCache? _memory;
    private DefaultCoalescingCache? _cache;

    [GlobalSetup]
    public void Setup()
    {
        for (int i = 0; i < Keys; i++)
        {
            _keys[i] = "product:" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        _value = Product.Create(42);
    }

    [IterationSetup(Target = nameof(MemoryCacheTryGetValueAndSet))]
    public void SetupMemoryCache() => _memory = new MemoryCache(new MemoryCacheOptions());

    [IterationCleanup(Target = nameof(MemoryCacheTryGetValueAndSet))]
    public void CleanupMemoryCache()
    {
        Check(_memory!.Count == Keys, $"every key is cached once (count {_memory.Count})");
        _memory.Dispose();
        _memory = null;
    }

    [IterationSetup(Target = nameof(CacheGuardGetOrLoadAsync))]
    public void SetupCacheGuard() => _cache = new DefaultCoalescingCache(new CoalescingCacheOptions(), distributedCache: null);

    [IterationCleanup(Target = nameof(CacheGuardGetOrLoadAsync))]
    public void CleanupCacheGuard()
    {
        Check(_cache!.InFlightCount == 0, "no flight is left behind");
        _cache.Dispose();
        _cache = null;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Keys, Description = "IMemoryCache TryGetValue+Set (raw cache-aside)")]
    public void MemoryCacheTryGetValueAndSet() => RunWorkers(static (self, from, to) =>
    {
        MemoryCache memory = self._memory!;
        string[] keys = self._keys;
        for (int i = from; i < to; i++)
        {
            if (!memory.TryGetValue(keys[i], out Product? value))
            {
                value = self._value;
                memory.Set(keys[i], value, Expiration);
            }
        }
    });

    [Benchmark(OperationsPerInvoke = Keys, Description = "CacheGuard GetOrLoadAsync (state), miss")]
    public void CacheGuardGetOrLoadAsync() => RunWorkers(static (self, from, to) =>
    {
        DefaultCoalescingCache cache = self._cache!;
        string[] keys = self._keys;
        for (int i = from; i < to; i++)
        {
            ValueTask<Product> pending = cache.GetOrLoadAsync(keys[i], self, static (s, _) => Task.FromResult(s._value));
            if (!pending.IsCompletedSuccessfully)
            {
                throw new InvalidOperationException("A miss whose loader completes synchronously must complete synchronously.");
            }
        }
    });

    private void RunWorkers(Action<MissThroughputBenchmarks, int, int> work)
    {
        const int Half = Keys / Workers;
        Task other = Task.Run(() => work(this, Half, Keys));
        work(this, 0, Half);
        other.GetAwaiter().GetResult();
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException("Benchmark self-check failed: " + what + ".");
        }
    }
}
