using System.Diagnostics.Metrics;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Benchmarks;

/// <summary>
/// Item 1, the L1 hit: one key, already cached, read again and again. The baselines are what every .NET user has:
/// <see cref="IMemoryCache"/> read directly, and its <c>GetOrCreateAsync</c> extension. Every benchmark returns the
/// same <see cref="Product"/> instance; <see cref="Setup"/> checks that, so no variant copies or deserializes.
/// </summary>
[MemoryDiagnoser]
public class L1HitBenchmarks
{
    private const string Key = "product:42";

    private ServiceProvider _services = null!;
    private ICoalescingCache _cache = null!;
    private ServiceProvider _observedServices = null!;
    private ICoalescingCache _observedCache = null!;
    private ScopedMeterFactory _meters = null!;
    private MeterListener _listener = null!;
    private long _observedMeasurements;
    private MemoryCache _memory = null!;
    private Product _value = null!;

    [GlobalSetup]
    public void Setup()
    {
        _value = Product.Create(42);

        _memory = new MemoryCache(new MemoryCacheOptions());
        _memory.Set(Key, _value, TimeSpan.FromHours(1));

        // Resolved from DI, as an application gets it.
        _services = new ServiceCollection().AddCoalescingCache().Services.BuildServiceProvider();
        _cache = _services.GetRequiredService<ICoalescingCache>();
        Product loaded = _cache.GetOrLoadAsync(Key, this, static (self, _) => Task.FromResult(self._value)).AsTask().GetAwaiter().GetResult();

        // The same, with a listener on CacheGuard's meter (as OpenTelemetry metrics would add): the hit counter is live.
        _meters = new ScopedMeterFactory();
        _observedServices = new ServiceCollection().AddSingleton<IMeterFactory>(_meters).AddCoalescingCache().Services.BuildServiceProvider();
        _observedCache = _observedServices.GetRequiredService<ICoalescingCache>();
        _observedCache.GetOrLoadAsync(Key, this, static (self, _) => Task.FromResult(self._value)).AsTask().GetAwaiter().GetResult();
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, _meters))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.SetMeasurementEventCallback<long>((_, value, _, _) => _observedMeasurements += value);
        _listener.Start();

        Check(ReferenceEquals(loaded, _value), "the loader's instance is the one cached");
        Check(ReferenceEquals(MemoryCacheTryGetValue(), _value), "IMemoryCache.TryGetValue returns the instance");
        Check(ReferenceEquals(MemoryCacheGetOrCreateAsync(), _value), "IMemoryCache.GetOrCreateAsync returns the instance");
        Check(ReferenceEquals(CacheGuardPlain(), _value), "GetOrLoadAsync returns the cached instance");
        Check(ReferenceEquals(CacheGuardState(), _value), "GetOrLoadAsync (state) returns the cached instance");
        Check(ReferenceEquals(CacheGuardStateWithMetricsListener(), _value), "GetOrLoadAsync (state, metrics on) returns the cached instance");
        Check(_observedMeasurements == 1, "the listener sees the observed cache's hit, and only that");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _listener.Dispose();
        _services.Dispose();
        _observedServices.Dispose();
        _meters.Dispose();
        _memory.Dispose();
    }

    [Benchmark(Baseline = true, Description = "IMemoryCache.TryGetValue (raw)")]
    public Product? MemoryCacheTryGetValue() => _memory.TryGetValue(Key, out Product? value) ? value : null;

    [Benchmark(Description = "IMemoryCache.GetOrCreateAsync (raw)")]
    public Product? MemoryCacheGetOrCreateAsync() =>
        _memory.GetOrCreateAsync(Key, static _ => Task.FromResult(Product.Create(42))).GetAwaiter().GetResult();

    [Benchmark(Description = "CacheGuard GetOrLoadAsync")]
    public Product CacheGuardPlain() =>
        _cache.GetOrLoadAsync(Key, static _ => Task.FromResult(Product.Create(42))).GetAwaiter().GetResult();

    [Benchmark(Description = "CacheGuard GetOrLoadAsync (state)")]
    public Product CacheGuardState() =>
        _cache.GetOrLoadAsync(Key, 42, static (id, _) => Task.FromResult(Product.Create(id))).GetAwaiter().GetResult();

    [Benchmark(Description = "CacheGuard GetOrLoadAsync (state, metrics listener on)")]
    public Product CacheGuardStateWithMetricsListener() =>
        _observedCache.GetOrLoadAsync(Key, 42, static (id, _) => Task.FromResult(Product.Create(id))).GetAwaiter().GetResult();

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException("Benchmark self-check failed: " + what + ".");
        }
    }
}
