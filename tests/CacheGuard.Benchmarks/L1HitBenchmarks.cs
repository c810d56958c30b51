using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using ZiggyCreatures.Caching.Fusion;

namespace CacheGuard.Benchmarks;

/// <summary>
/// The L1 hit: one key per value type, already cached, read again and again through each library's read-through call
/// (CacheGuard <c>GetOrLoadAsync</c>, HybridCache <c>GetOrCreateAsync</c>, FusionCache <c>GetOrSetAsync</c>), each
/// resolved from its own service provider as an application gets it. The raw rows are
/// <see cref="MemoryCache.TryGetValue"/> of the same type. Value types: a sealed mutable class (<see cref="Product"/>),
/// an immutable record (<see cref="ProductRecord"/>) and a <see cref="string"/> for every library, and for CacheGuard
/// also a plain <see cref="object"/> and a struct (<see cref="StockLevel"/>).
/// </summary>
/// <remarks>
/// Method names are <c>{Library}_{Type}</c>: the report reads them. Whether a row returns the cached instance is
/// checked by <see cref="CheckInstances"/>, which the host process runs (BenchmarkDotNet measures in a child
/// process).
/// </remarks>
[MemoryDiagnoser]
public class L1HitBenchmarks
{
    private static readonly Product ProductValue = Product.Create(42);
    private static readonly ProductRecord RecordValue = ProductRecord.Create(42);
    private static readonly string StringValue = "product 42: " + new string('x', 40);
    private static readonly object ObjectValue = new();
    private static readonly StockLevel StructValue = new(42, 7, 3);

    private MemoryCache _memory = null!;
    private ServiceProvider _cacheGuardServices = null!;
    private ServiceProvider _hybridServices = null!;
    private ServiceProvider _fusionServices = null!;
    private ICoalescingCache _cacheGuard = null!;
    private HybridCache _hybrid = null!;
    private IFusionCache _fusion = null!;

    /// <summary>The types measured, in the report's order.</summary>
    public static readonly string[] Types = ["Product", "Record", "String", "Object", "Struct"];

    [GlobalSetup]
    public void Setup()
    {
        _memory = new MemoryCache(new MemoryCacheOptions());
        _memory.Set("product", ProductValue, Peers.L1Expiration);
        _memory.Set("record", RecordValue, Peers.L1Expiration);
        _memory.Set("string", StringValue, Peers.L1Expiration);
        _memory.Set("object", ObjectValue, Peers.L1Expiration);
        _memory.Set("struct", StructValue, Peers.L1Expiration);

        _cacheGuardServices = Peers.CacheGuard();
        _hybridServices = Peers.Hybrid();
        _fusionServices = Peers.Fusion();
        _cacheGuard = _cacheGuardServices.GetRequiredService<ICoalescingCache>();
        _hybrid = _hybridServices.GetRequiredService<HybridCache>();
        _fusion = _fusionServices.GetRequiredService<IFusionCache>();

        // The first call of each is the miss that caches the value; every measured call after it is an L1 hit.
        foreach (Func<object?> call in Calls())
        {
            _ = call();
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cacheGuardServices.Dispose();
        _hybridServices.Dispose();
        _fusionServices.Dispose();
        _memory.Dispose();
    }

    [Benchmark(Baseline = true)]
    public Product? Raw_Product() => _memory.TryGetValue("product", out Product? value) ? value : null;

    [Benchmark]
    public ProductRecord? Raw_Record() => _memory.TryGetValue("record", out ProductRecord? value) ? value : null;

    [Benchmark]
    public string? Raw_String() => _memory.TryGetValue("string", out string? value) ? value : null;

    [Benchmark]
    public object? Raw_Object() => _memory.TryGetValue("object", out object? value) ? value : null;

    [Benchmark]
    public StockLevel Raw_Struct() => _memory.TryGetValue("struct", out StockLevel value) ? value : default;

    [Benchmark]
    public Product CacheGuard_Product() =>
        _cacheGuard.GetOrLoadAsync("product", 0, static (_, _) => Task.FromResult(ProductValue)).GetAwaiter().GetResult();

    [Benchmark]
    public ProductRecord CacheGuard_Record() =>
        _cacheGuard.GetOrLoadAsync("record", 0, static (_, _) => Task.FromResult(RecordValue)).GetAwaiter().GetResult();

    [Benchmark]
    public string CacheGuard_String() =>
        _cacheGuard.GetOrLoadAsync("string", 0, static (_, _) => Task.FromResult(StringValue)).GetAwaiter().GetResult();

    [Benchmark]
    public object CacheGuard_Object() =>
        _cacheGuard.GetOrLoadAsync("object", 0, static (_, _) => Task.FromResult(ObjectValue)).GetAwaiter().GetResult();

    [Benchmark]
    public StockLevel CacheGuard_Struct() =>
        _cacheGuard.GetOrLoadAsync("struct", 0, static (_, _) => Task.FromResult(StructValue)).GetAwaiter().GetResult();

    [Benchmark]
    public Product HybridCache_Product() =>
        _hybrid.GetOrCreateAsync("product", 0, static (_, _) => new ValueTask<Product>(ProductValue)).GetAwaiter().GetResult();

    [Benchmark]
    public ProductRecord HybridCache_Record() =>
        _hybrid.GetOrCreateAsync("record", 0, static (_, _) => new ValueTask<ProductRecord>(RecordValue)).GetAwaiter().GetResult();

    [Benchmark]
    public string HybridCache_String() =>
        _hybrid.GetOrCreateAsync("string", 0, static (_, _) => new ValueTask<string>(StringValue)).GetAwaiter().GetResult();

    [Benchmark]
    public Product FusionCache_Product() =>
        _fusion.GetOrSetAsync<Product>("product", static (_, _) => Task.FromResult(ProductValue)).GetAwaiter().GetResult();

    [Benchmark]
    public ProductRecord FusionCache_Record() =>
        _fusion.GetOrSetAsync<ProductRecord>("record", static (_, _) => Task.FromResult(RecordValue)).GetAwaiter().GetResult();

    [Benchmark]
    public string FusionCache_String() =>
        _fusion.GetOrSetAsync<string>("string", static (_, _) => Task.FromResult(StringValue)).GetAwaiter().GetResult();

    /// <summary>
    /// For each benchmark method, whether a hit returns the very instance that was cached (for the struct: an equal
    /// value, which is all a value type can promise). Runs the setup and each call in this process.
    /// </summary>
    public static Dictionary<string, bool> CheckInstances()
    {
        var bench = new L1HitBenchmarks();
        bench.Setup();
        try
        {
            var same = new Dictionary<string, bool>(StringComparer.Ordinal);
            foreach (System.Reflection.MethodInfo method in typeof(L1HitBenchmarks).GetMethods())
            {
                if (method.GetCustomAttributes(typeof(BenchmarkAttribute), inherit: false).Length == 0)
                {
                    continue;
                }

                object? first = method.Invoke(bench, null);
                object? second = method.Invoke(bench, null);
                object expected = method.Name[(method.Name.IndexOf('_', StringComparison.Ordinal) + 1)..] switch
                {
                    "Product" => ProductValue,
                    "Record" => RecordValue,
                    "String" => StringValue,
                    "Object" => ObjectValue,
                    _ => StructValue,
                };
                same[method.Name] = expected is StockLevel
                    ? Equals(first, expected) && Equals(second, expected)
                    : ReferenceEquals(first, expected) && ReferenceEquals(second, expected);
            }

            return same;
        }
        finally
        {
            bench.Cleanup();
        }
    }

    private IEnumerable<Func<object?>> Calls() =>
    [
        () => CacheGuard_Product(), () => CacheGuard_Record(), () => CacheGuard_String(), () => CacheGuard_Object(), () => CacheGuard_Struct(),
        () => HybridCache_Product(), () => HybridCache_Record(), () => HybridCache_String(),
        () => FusionCache_Product(), () => FusionCache_Record(), () => FusionCache_String(),
    ];
}
