using System.Globalization;
using CacheGuard.Internal;
using Microsoft.Extensions.Caching.Memory;

namespace CacheGuard.Benchmarks;

/// <summary>One line of the miss-path allocation breakdown.</summary>
internal sealed record AllocationShare(string Part, double BytesPerOp);

/// <summary>
/// Where the bytes of one miss go (item 5's bytes/op), measured exactly: each part of the miss path is run 20,000
/// times on one thread, on distinct keys, between two reads of <see cref="GC.GetAllocatedBytesForCurrentThread"/>.
/// The parts are the pieces the miss path is made of (read from src/CacheGuard), measured in isolation, so the rest
/// ("CacheGuard's own bookkeeping") is the whole miss minus those pieces.
/// </summary>
internal static class AllocationBreakdown
{
    private const int Ops = 20_000;

    public static List<AllocationShare> Run()
    {
        Product value = Product.Create(42);
        string[] keys = Enumerable.Range(0, Ops).Select(i => "product:" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var shares = new List<AllocationShare>();

        double whole = Measure(() =>
        {
            using var cache = new DefaultCoalescingCache(new CoalescingCacheOptions(), distributedCache: null);
            return Loop(keys, k => _ = cache.GetOrLoadAsync(k, value, static (v, _) => Task.FromResult(v)));
        });
        double raw = Measure(() =>
        {
            using var memory = new MemoryCache(new MemoryCacheOptions());
            return Loop(keys, k =>
            {
                if (!memory.TryGetValue(k, out Product? _))
                {
                    memory.Set(k, value, TimeSpan.FromMinutes(5));
                }
            });
        });
        double task = Measure(() => Loop(keys, _ => GC.KeepAlive(Task.FromResult(value))));
        double item = Measure(() => Loop(keys, _ => GC.KeepAlive(new CacheItem<Product>(value, 1, 2))));
        double flight = Measure(() =>
        {
            var table = new FlightTable<string>(StringComparer.Ordinal);
            return Loop(keys, k => table.JoinOrStart<Product>(k, default, mayBeTagged: false, cancellable: false, out _, out _)!.Complete(value));
        });

        shares.Add(new AllocationShare("Whole miss: CacheGuard GetOrLoadAsync (state), L1 only, synchronous loader", whole));
        shares.Add(new AllocationShare("  IMemoryCache TryGetValue + Set (the raw baseline's whole miss; CacheGuard's L1 write is the same)", raw));
        shares.Add(new AllocationShare("  the loader's Task.FromResult(value)", task));
        shares.Add(new AllocationShare("  CacheItem<T> (the L1 wrapper around the value)", item));
        shares.Add(new AllocationShare("  Flight<string, T> (FlightTable.JoinOrStart + Complete, uncontended)", flight));
        shares.Add(new AllocationShare("  the rest (CacheGuard's other bookkeeping)", whole - raw - task - item - flight));
        return shares;
    }

    private static double Measure(Func<long> run)
    {
        run(); // warm up: JIT, tiering, pools
        return run() / (double)Ops;
    }

    private static long Loop(string[] keys, Action<string> op)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (string key in keys)
        {
            op(key);
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
