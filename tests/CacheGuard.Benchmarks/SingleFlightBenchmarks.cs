using BenchmarkDotNet.Attributes;

namespace CacheGuard.Benchmarks;

/// <summary>
/// Item 4, the cost of <see cref="SingleFlight{TKey, TValue}.DoAsync(TKey, Func{CancellationToken, Task{TValue}}, CancellationToken)"/>
/// itself: the work completes synchronously and returns an already-completed task, as Go's benchmark function returns
/// a value at once, so what is measured is the bookkeeping. The Go side (go/singleflight_bench.go) runs the same shapes
/// in the same run: <c>Do</c> on one key from one goroutine, and from two.
/// </summary>
[MemoryDiagnoser]
public class SingleFlightBenchmarks
{
    /// <summary>Calls per thread per invocation in the contended case.</summary>
    public const int ContendedCallsPerThread = 10_000;

    private const string Key = "key";
    private static readonly Task<Product> Done = Task.FromResult(Product.Create(42));

    private SingleFlight<string, Product> _flight = null!;

    [GlobalSetup]
    public void Setup() => _flight = new SingleFlight<string, Product>(StringComparer.Ordinal);

    [Benchmark(Baseline = true, Description = "SingleFlight.DoAsync, uncontended")]
    public Product Uncontended() => _flight.DoAsync(Key, static _ => Done).GetAwaiter().GetResult().Value;

    [Benchmark(Description = "SingleFlight.DoAsync (state), uncontended")]
    public Product UncontendedState() => _flight.DoAsync(Key, 42, static (_, _) => Done).GetAwaiter().GetResult().Value;

    [Benchmark(Description = "SingleFlight.DoAsync, contended (2 threads, 1 key)", OperationsPerInvoke = 2 * ContendedCallsPerThread)]
    public void Contended()
    {
        SingleFlight<string, Product> flight = _flight;
        Task other = Task.Run(() => Hammer(flight));
        Hammer(flight);
        other.GetAwaiter().GetResult();
    }

    private static void Hammer(SingleFlight<string, Product> flight)
    {
        for (int i = 0; i < ContendedCallsPerThread; i++)
        {
            flight.DoAsync(Key, static _ => Done).GetAwaiter().GetResult();
        }
    }
}
