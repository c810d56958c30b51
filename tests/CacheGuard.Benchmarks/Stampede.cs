using System.Diagnostics;
using CacheGuard.Internal;
using Microsoft.Extensions.Caching.Memory;

namespace CacheGuard.Benchmarks;

/// <summary>One stampede measurement: <see cref="Callers"/> callers on one cold key whose loader awaits 20 ms.</summary>
internal sealed record StampedeResult(
    string Subject,
    int Callers,
    int Rounds,
    long LoaderCallsMin,
    long LoaderCallsMax,
    double LoaderMs,
    double ServedMsMedian,
    double ExtraMsMedian,
    double ExtraMsMax,
    double BytesPerCaller);

/// <summary>
/// Item 3, the stampede, measured directly (BenchmarkDotNet reports one duration per operation, and this needs
/// three numbers per run). Each round: N callers, each an <c>async</c> method as a request handler would be, are
/// parked on a start gate; the gate opens; all N ask for one cold key; the loader awaits 20 ms. Measured per round:
/// how often the loader ran; the time from opening the gate until the last caller has its value, minus the loader's
/// own duration measured on the same clock ("extra"); and the bytes the whole process allocated from opening the
/// gate until the last caller finished, divided by N. The callers' own async frames are allocated before the gate
/// opens, so they are not counted; what is counted is everything the cache (or the naive code) allocates to serve
/// them, plus what awaiting costs the runtime.
/// </summary>
/// <remarks>
/// The rows: a <c>Lazy&lt;Task&lt;T&gt;&gt;</c> all callers await is the floor (one task, no cache, no expiry, never
/// cleaned up: the least any in-process coalescing can do); CacheGuard without and with a cancellable token;
/// <see cref="SingleFlight{TKey, TValue}"/>; and the naive patterns over <see cref="IMemoryCache"/>, which run the loader
/// about N times. The Go program runs the same shape with goroutines.
/// </remarks>
internal static class Stampede
{
    public static readonly TimeSpan LoaderTime = TimeSpan.FromMilliseconds(20);
    public static readonly int[] CallerCounts = [100, 1_000, 10_000];

    public static List<StampedeResult> Run(int rounds, TextWriter log)
    {
        var results = new List<StampedeResult>();
        foreach (int n in CallerCounts)
        {
            results.Add(Measure("Lazy<Task<T>> shared by all callers (floor)", n, rounds, static () => new LazyTaskTarget()));
            results.Add(Measure("CacheGuard GetOrLoadAsync", n, rounds, static () => new CacheGuardTarget(cancellable: false)));
            results.Add(Measure("CacheGuard GetOrLoadAsync, cancellable token", n, rounds, static () => new CacheGuardTarget(cancellable: true)));
            results.Add(Measure("SingleFlight.DoAsync", n, rounds, static () => new SingleFlightTarget()));
            results.Add(Measure("IMemoryCache TryGetValue, load, Set (naive)", n, rounds, static () => new CacheAsideTarget()));
            results.Add(Measure("IMemoryCache.GetOrCreateAsync (naive)", n, rounds, static () => new GetOrCreateTarget()));
            log.WriteLine($"// Stampede N={n}: done");
        }

        return results;
    }

    private static StampedeResult Measure<TResult>(string subject, int n, int rounds, Func<Target<TResult>> create)
    {
        var extras = new List<double>(rounds);
        var served = new List<double>(rounds);
        var loader = new List<double>(rounds);
        long callsMin = long.MaxValue, callsMax = 0;
        double bytes = 0;
        long[] done = new long[n];
        var callers = new Task[n];

        for (int round = -1; round < rounds; round++) // round -1 warms up
        {
            using Target<TResult> target = create();
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            for (int i = 0; i < n; i++)
            {
                callers[i] = CallerAsync(target, gate.Task, done, i);
            }

            Task all = Task.WhenAll(callers);
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(2, GCCollectionMode.Forced, blocking: true);

            long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            long start = Stopwatch.GetTimestamp();
            gate.SetResult();
            all.GetAwaiter().GetResult();
            long allocatedAfter = GC.GetTotalAllocatedBytes(precise: true);

            if (round < 0)
            {
                continue;
            }

            long last = done.Max();
            double servedMs = Stopwatch.GetElapsedTime(start, last).TotalMilliseconds;
            double loaderMs = TimeSpan.FromTicks(target.LoaderTicksMax * TimeSpan.TicksPerSecond / Stopwatch.Frequency).TotalMilliseconds;
            served.Add(servedMs);
            loader.Add(loaderMs);
            extras.Add(servedMs - loaderMs);
            callsMin = Math.Min(callsMin, target.LoaderCalls);
            callsMax = Math.Max(callsMax, target.LoaderCalls);
            bytes += (double)(allocatedAfter - allocatedBefore) / n;
        }

        return new StampedeResult(subject, n, rounds, callsMin, callsMax, Median(loader), Median(served), Median(extras), extras.Max(), bytes / rounds);
    }

    private static async Task CallerAsync<TResult>(Target<TResult> target, Task gate, long[] done, int index)
    {
        await gate;
        _ = await target.GetAsync();
        done[index] = Stopwatch.GetTimestamp();
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        int middle = values.Count / 2;
        return values.Count % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
    }

    /// <summary>What the callers call. The loader is the same everywhere: count, await 20 ms, return the value.</summary>
    private abstract class Target<TResult> : IDisposable
    {
        protected const string Key = "product:42";
        private static readonly Product Value = Product.Create(42);

        private long _loaderCalls;
        private long _loaderTicksMax;

        public long LoaderCalls => Volatile.Read(ref _loaderCalls);

        public long LoaderTicksMax => Volatile.Read(ref _loaderTicksMax);

        public abstract ValueTask<TResult> GetAsync();

        public virtual void Dispose()
        {
        }

        protected async Task<Product> LoadAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _loaderCalls);
            long started = Stopwatch.GetTimestamp();
            await Task.Delay(LoaderTime, cancellationToken).ConfigureAwait(false);
            long took = Stopwatch.GetTimestamp() - started;
            long seen = Volatile.Read(ref _loaderTicksMax);
            while (took > seen)
            {
                long previous = Interlocked.CompareExchange(ref _loaderTicksMax, took, seen);
                if (previous == seen)
                {
                    break;
                }

                seen = previous;
            }

            return Value;
        }
    }

    private sealed class LazyTaskTarget : Target<Product>
    {
        private readonly Lazy<Task<Product>> _load;

        public LazyTaskTarget() => _load = new Lazy<Task<Product>>(() => LoadAsync(CancellationToken.None), LazyThreadSafetyMode.ExecutionAndPublication);

        public override ValueTask<Product> GetAsync() => new(_load.Value);
    }

    private sealed class CacheGuardTarget(bool cancellable) : Target<Product>
    {
        private readonly DefaultCoalescingCache _cache = new(new CoalescingCacheOptions(), distributedCache: null);
        private readonly CancellationTokenSource? _cts = cancellable ? new CancellationTokenSource() : null;

        public override ValueTask<Product> GetAsync() =>
            _cache.GetOrLoadAsync(Key, this, static (self, ct) => self.LoadAsync(ct), cancellationToken: _cts?.Token ?? CancellationToken.None);

        public override void Dispose()
        {
            _cache.Dispose();
            _cts?.Dispose();
            base.Dispose();
        }
    }

    private sealed class SingleFlightTarget : Target<SingleFlightResult<Product>>
    {
        private readonly SingleFlight<string, Product> _flight = new(StringComparer.Ordinal);

        public override ValueTask<SingleFlightResult<Product>> GetAsync() =>
            new(_flight.DoAsync(Key, this, static (self, ct) => self.LoadAsync(ct)));
    }

    private sealed class CacheAsideTarget : Target<Product>
    {
        private readonly MemoryCache _memory = new(new MemoryCacheOptions());

        public override async ValueTask<Product> GetAsync()
        {
            if (_memory.TryGetValue(Key, out Product? value))
            {
                return value!;
            }

            value = await LoadAsync(CancellationToken.None);
            _memory.Set(Key, value, TimeSpan.FromMinutes(5));
            return value;
        }

        public override void Dispose()
        {
            _memory.Dispose();
            base.Dispose();
        }
    }

    private sealed class GetOrCreateTarget : Target<Product>
    {
        private readonly MemoryCache _memory = new(new MemoryCacheOptions());
        private readonly Func<ICacheEntry, Task<Product>> _factory;

        public GetOrCreateTarget() => _factory = entry =>
        {
            entry.AbsoluteExpirationRelativeToNow = TimeSpan.FromMinutes(5);
            return LoadAsync(CancellationToken.None);
        };

        public override ValueTask<Product> GetAsync() => new(_memory.GetOrCreateAsync(Key, _factory)!);

        public override void Dispose()
        {
            _memory.Dispose();
            base.Dispose();
        }
    }
}
