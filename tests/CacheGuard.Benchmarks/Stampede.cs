using System.Diagnostics;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using ZiggyCreatures.Caching.Fusion;

namespace CacheGuard.Benchmarks;

/// <summary>How the callers of a stampede arrive.</summary>
internal enum StampedeMode
{
    /// <summary>N <c>async</c> callers, each a request handler, parked on a start gate and released together.</summary>
    Parked,

    /// <summary>One loop issues the N calls one after another, then awaits them all.</summary>
    Loop,
}

/// <summary>One stampede measurement: <see cref="Callers"/> callers on one cold key whose loader awaits 20 ms.</summary>
internal sealed record StampedeResult(
    string Library,
    string Subject,
    StampedeMode Mode,
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
/// The stampede, measured by its own runner (three numbers per round; BenchmarkDotNet reports one). Each round: N
/// callers ask for one cold key; the loader counts its calls, awaits 20 ms and returns the value. Per round: how often
/// the loader ran; "extra", the time from opening the gate (or starting the loop) until the last caller has its value,
/// minus the loader's own duration measured on the same clock; and the bytes the whole process allocated meanwhile,
/// divided by N.
/// </summary>
/// <remarks>
/// <para>
/// Parked: the callers' own <c>async</c> frames exist before the gate opens and are not counted; what is counted is
/// what serving them costs. Loop: one loop issues all N calls and then awaits them, so every call's own allocation
/// (its pending task, a state machine) is counted.
/// </para>
/// <para>
/// The rows: the harness alone (callers released and handed a completed value: what waking them costs the runner and
/// the thread pool, which every other row's bytes include); a <c>Lazy&lt;Task&lt;T&gt;&gt;</c> every caller awaits is the floor (no cache at all: the least any
/// in-process coalescing can cost); CacheGuard without and with a cancellable token; HybridCache; FusionCache;
/// CacheGuard's <see cref="SingleFlight{TKey, TValue}"/>; and naive cache-aside over <see cref="IMemoryCache"/> (every
/// caller checks, misses and loads), the raw baseline, which runs the loader N times.
/// </para>
/// </remarks>
internal static class Stampede
{
    public static readonly TimeSpan LoaderTime = TimeSpan.FromMilliseconds(20);

    public static List<StampedeResult> Run(bool quick, TextWriter log)
    {
        int[] callerCounts = quick ? [1_000, 10_000] : [1_000, 10_000, 50_000];
        var results = new List<StampedeResult>();
        foreach (StampedeMode mode in new[] { StampedeMode.Parked, StampedeMode.Loop })
        {
            foreach (int n in callerCounts)
            {
                int rounds = quick ? 2 : n > 10_000 ? 10 : 30;
                results.Add(Measure(Library.Raw, HarnessSubject, mode, n, rounds, static () => new HarnessTarget()));
                results.Add(Measure(Library.Raw, "Lazy<Task<T>> shared by all callers (floor)", mode, n, rounds, static () => new LazyTaskTarget()));
                results.Add(Measure(Library.CacheGuard, "CacheGuard GetOrLoadAsync", mode, n, rounds, static () => new CacheGuardTarget(cancellable: false)));
                results.Add(Measure(Library.CacheGuard, "CacheGuard GetOrLoadAsync, cancellable token", mode, n, rounds, static () => new CacheGuardTarget(cancellable: true)));
                results.Add(Measure(Library.Hybrid, "HybridCache GetOrCreateAsync", mode, n, rounds, static () => new HybridTarget()));
                results.Add(Measure(Library.Fusion, "FusionCache GetOrSetAsync", mode, n, rounds, static () => new FusionTarget()));
                results.Add(Measure(Library.CacheGuard, "CacheGuard SingleFlight.DoAsync", mode, n, rounds, static () => new SingleFlightTarget()));
                results.Add(Measure(Library.Raw, NaiveSubject, mode, n, rounds, static () => new CacheAsideTarget()));
                log.WriteLine($"// Stampede {mode}, N={n:N0}: done");
            }
        }

        return results;
    }

    /// <summary>The raw baseline's subject, as the report finds it.</summary>
    public const string NaiveSubject = "naive cache-aside: IMemoryCache TryGetValue, load, Set";

    /// <summary>The row that measures the runner itself: every caller is released and handed a value already there.</summary>
    public const string HarnessSubject = "harness only: callers released, value already there (no load)";

    /// <summary>CacheGuard's main row, as the report finds it.</summary>
    public const string CacheGuardSubject = "CacheGuard GetOrLoadAsync";

    private static StampedeResult Measure<TResult>(string library, string subject, StampedeMode mode, int n, int rounds, Func<Target<TResult>> create)
    {
        var extras = new List<double>(rounds);
        var served = new List<double>(rounds);
        var loader = new List<double>(rounds);
        long callsMin = long.MaxValue, callsMax = 0;
        double bytes = 0;
        long[] done = new long[n];
        var callers = new Task[n];
        var pending = new ValueTask<TResult>[n];

        for (int round = -1; round < rounds; round++) // round -1 warms up
        {
            using Target<TResult> target = create();
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task all = Task.CompletedTask;
            if (mode == StampedeMode.Parked)
            {
                for (int i = 0; i < n; i++)
                {
                    callers[i] = CallerAsync(target, gate.Task, done, i);
                }

                all = Task.WhenAll(callers);
            }

            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(2, GCCollectionMode.Forced, blocking: true);

            long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            long start = Stopwatch.GetTimestamp();
            long last;
            if (mode == StampedeMode.Parked)
            {
                gate.SetResult();
                all.GetAwaiter().GetResult();
                last = done.Max();
            }
            else
            {
                for (int i = 0; i < n; i++)
                {
                    pending[i] = target.GetAsync();
                }

                AwaitAllAsync(pending).GetAwaiter().GetResult();
                last = Stopwatch.GetTimestamp();
            }

            long allocatedAfter = GC.GetTotalAllocatedBytes(precise: true);
            Array.Clear(pending);
            if (round < 0)
            {
                continue;
            }

            double servedMs = Stopwatch.GetElapsedTime(start, last).TotalMilliseconds;
            double loaderMs = TimeSpan.FromTicks(target.LoaderTicksMax * TimeSpan.TicksPerSecond / Stopwatch.Frequency).TotalMilliseconds;
            served.Add(servedMs);
            loader.Add(loaderMs);
            extras.Add(servedMs - loaderMs);
            callsMin = Math.Min(callsMin, target.LoaderCalls);
            callsMax = Math.Max(callsMax, target.LoaderCalls);
            bytes += (double)(allocatedAfter - allocatedBefore) / n;
        }

        return new StampedeResult(library, subject, mode, n, rounds, callsMin, callsMax, Median(loader), Median(served), Median(extras), extras.Max(), bytes / rounds);
    }

    private static async Task CallerAsync<TResult>(Target<TResult> target, Task gate, long[] done, int index)
    {
        await gate;
        _ = await target.GetAsync();
        done[index] = Stopwatch.GetTimestamp();
    }

    private static async Task AwaitAllAsync<TResult>(ValueTask<TResult>[] pending)
    {
        for (int i = 0; i < pending.Length; i++)
        {
            _ = await pending[i];
        }
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

    private sealed class HarnessTarget : Target<Product>
    {
        private static readonly Product Ready = Product.Create(42);

        public override ValueTask<Product> GetAsync() => new(Ready);
    }

    private sealed class LazyTaskTarget : Target<Product>
    {
        private readonly Lazy<Task<Product>> _load;

        public LazyTaskTarget() => _load = new Lazy<Task<Product>>(() => LoadAsync(CancellationToken.None), LazyThreadSafetyMode.ExecutionAndPublication);

        public override ValueTask<Product> GetAsync() => new(_load.Value);
    }

    private sealed class CacheGuardTarget : Target<Product>
    {
        private readonly ServiceProvider _services = Peers.CacheGuard();
        private readonly CancellationTokenSource? _cts;
        private readonly ICoalescingCache _cache;

        // Resolved before the round starts, so the measured window holds calls only.
        public CacheGuardTarget(bool cancellable)
        {
            _cts = cancellable ? new CancellationTokenSource() : null;
            _cache = _services.GetRequiredService<ICoalescingCache>();
        }

        public override ValueTask<Product> GetAsync() =>
            _cache.GetOrLoadAsync(Key, this, static (self, ct) => self.LoadAsync(ct), cancellationToken: _cts?.Token ?? CancellationToken.None);

        public override void Dispose()
        {
            _services.Dispose();
            _cts?.Dispose();
            base.Dispose();
        }
    }

    private sealed class HybridTarget : Target<Product>
    {
        private readonly ServiceProvider _services = Peers.Hybrid();
        private readonly HybridCache _cache;

        public HybridTarget() => _cache = _services.GetRequiredService<HybridCache>();

        public override ValueTask<Product> GetAsync() =>
            _cache.GetOrCreateAsync(Key, this, static (self, ct) => new ValueTask<Product>(self.LoadAsync(ct)));

        public override void Dispose()
        {
            _services.Dispose();
            base.Dispose();
        }
    }

    private sealed class FusionTarget : Target<Product>
    {
        private readonly ServiceProvider _services = Peers.Fusion();
        private readonly Func<FusionCacheFactoryExecutionContext<Product>, CancellationToken, Task<Product>> _factory;
        private readonly IFusionCache _cache;

        public FusionTarget()
        {
            _factory = (_, ct) => LoadAsync(ct);
            _cache = _services.GetRequiredService<IFusionCache>();
        }

        public override ValueTask<Product> GetAsync() => _cache.GetOrSetAsync(Key, _factory, failSafeDefaultValue: default);

        public override void Dispose()
        {
            _services.Dispose();
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
            _memory.Set(Key, value, Peers.L1Expiration);
            return value;
        }

        public override void Dispose()
        {
            _memory.Dispose();
            base.Dispose();
        }
    }
}
