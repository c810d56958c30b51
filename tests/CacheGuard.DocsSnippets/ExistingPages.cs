using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.DocsSnippets;

// Snippets of concepts.md, configuration.md, singleflight.md and observability.md.
public static class ExistingPages
{
    public static async Task Concepts(ICoalescingCache cache, UserDb db, int id)
    {
        var user = await cache.GetOrLoadAsync($"user:{id}", (db, id), static (s, ct) => s.db.FindUserAsync(s.id, ct));
    }

    public static void Configuration(IServiceCollection services)
    {
        services.AddCoalescingCache(o =>
        {
            o.DefaultExpiration = TimeSpan.FromMinutes(10);
            o.DefaultLocalExpiration = TimeSpan.FromMinutes(1);
            o.KeyPrefix = "orders-api:";
        })
        .WithDistributedCache(sp => sp.GetRequiredService<MyDistributedCache>());
    }

    public static async Task SingleFlight(string month)
    {
        var group = new SingleFlight<string, Report>();

        SingleFlightResult<Report> result = await group.DoAsync(
            "report:2026-11", month, static (month, ct) => BuildReportAsync(month, ct));
        // result.Value: the report; result.Shared: whether another caller got this same execution
    }

    public static void Observability()
    {
        // With the OpenTelemetry SDK (OpenTelemetry.Extensions.Hosting), nothing CacheGuard-specific beyond the two names:
        //   builder.Services.AddOpenTelemetry()
        //       .WithMetrics(m => m.AddMeter("CacheGuard"))
        //       .WithTracing(t => t.AddSource("CacheGuard"));
        // Without it, read the same instruments in-process:
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "CacheGuard")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Console.WriteLine($"{instrument.Name} +{value}"));
        listener.Start();
    }

    private static Task<Report> BuildReportAsync(string month, CancellationToken ct) => Task.FromResult(new Report(month));
}

public sealed class MyDistributedCache : Microsoft.Extensions.Caching.Distributed.MemoryDistributedCache
{
    public MyDistributedCache()
        : base(Microsoft.Extensions.Options.Options.Create(new Microsoft.Extensions.Caching.Memory.MemoryDistributedCacheOptions()))
    {
    }
}
