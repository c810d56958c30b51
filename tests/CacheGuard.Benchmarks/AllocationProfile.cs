using System.Diagnostics.Tracing;
using System.Globalization;

namespace CacheGuard.Benchmarks;

/// <summary>
/// Where an L2 hit's bytes go, by type: the runtime's own allocation sampling (the <c>GCAllocationTick</c> event, raised
/// about every 100 KB allocated, naming the type of the object that crossed the mark), heard in process by an
/// <see cref="EventListener"/>. Over many hits the samples are proportional to the bytes each type takes. Run as
/// <c>dotnet run -c Release --project tests/CacheGuard.Benchmarks -- --profile-l2-hit</c> (needs redis-server): raw
/// <c>RedisCache.GetAsync</c> + System.Text.Json, then CacheGuard, each reading from L2 only, with 64 callers (or as
/// many as follow the option).
/// </summary>
internal static class AllocationProfile
{
    private const int Hits = 200_000;

    public static async Task RunAsync(TextWriter log, int callers)
    {
        await using RedisServer server = await RedisServer.StartAsync().ConfigureAwait(false);
        foreach (string library in (string[])[Library.Raw, Library.CacheGuard])
        {
            await using RedisSubject subject = RedisSubject.Create(library, server.Configuration);
            string[] keys = [.. Enumerable.Range(0, callers).Select(i => "profile:" + i.ToString(CultureInfo.InvariantCulture))];
            foreach (string key in keys)
            {
                await subject.SetAsync(key, Product.Create(7)).ConfigureAwait(false);
            }

            await HitAsync(subject, keys, Hits / 10).ConfigureAwait(false); // warm up: pools, JIT, connections
            using var listener = new AllocationListener();
            long before = GC.GetTotalAllocatedBytes(precise: true);
            await HitAsync(subject, keys, Hits).ConfigureAwait(false);
            long bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
            listener.Dispose();
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"## {subject.Name}: {bytes / (double)Hits:0} B per L2 hit ({Hits:N0} hits, {callers} callers), by type (sampled):"));
            Dictionary<string, long> types = listener.Snapshot();
            long sampled = types.Values.Sum();
            foreach ((string type, long amount) in types.OrderByDescending(t => t.Value).Take(20))
            {
                log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {amount * (double)bytes / Math.Max(1, sampled) / Hits,7:0} B  {type}"));
            }
        }
    }

    private static async Task HitAsync(RedisSubject subject, string[] keys, int hits)
    {
        int issued = 0;
        await Task.WhenAll(keys.Select(key => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref issued) <= hits)
            {
                _ = await subject.GetFromL2Async(key).ConfigureAwait(false);
            }
        }))).ConfigureAwait(false);
    }

    /// <summary>Adds up the runtime's allocation samples by type name.</summary>
    private sealed class AllocationListener : EventListener
    {
        private const EventKeywords GcKeyword = (EventKeywords)0x1;
        private readonly Lock _gate = new();

        private readonly Dictionary<string, long> _types = [];

        public Dictionary<string, long> Snapshot()
        {
            lock (_gate)
            {
                return new Dictionary<string, long>(_types);
            }
        }

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(source, EventLevel.Verbose, GcKeyword);
            }
        }

        protected override void OnEventWritten(EventWrittenEventArgs data)
        {
            if (data.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || data.PayloadNames is null)
            {
                return;
            }

            int typeAt = data.PayloadNames.IndexOf("TypeName");
            int amountAt = data.PayloadNames.IndexOf("AllocationAmount64");
            if (typeAt < 0 || data.Payload is null)
            {
                return;
            }

            string type = data.Payload[typeAt] as string ?? "?";
            long amount = amountAt >= 0 ? Convert.ToInt64(data.Payload[amountAt], CultureInfo.InvariantCulture) : 100_000;
            lock (_gate)
            {
                _types[type] = _types.GetValueOrDefault(type) + amount;
            }
        }
    }
}
