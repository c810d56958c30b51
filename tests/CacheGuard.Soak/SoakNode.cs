using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Soak;

/// <summary>
/// One cache node: its own service provider (as its own process would have), so its own L1, Redis connection,
/// backplane subscription and load lock, with the options every node shares.
/// </summary>
internal sealed class SoakNode : IAsyncDisposable
{
    private SoakNode(int id, ServiceProvider provider, ICoalescingCache? cache = null)
    {
        Id = id;
        Provider = provider;
        Cache = cache ?? provider.GetRequiredService<ICoalescingCache>(); // creating it subscribes to the backplane
    }

    public int Id { get; }

    public ServiceProvider Provider { get; }

    public ICoalescingCache Cache { get; }

    public static SoakNode Create(int id, int redisPort, SoakSettings settings, SoakLog log)
    {
        if (settings.PassThrough)
        {
            return new SoakNode(id, new ServiceCollection().BuildServiceProvider(), new PassThroughCache());
        }

        var services = new ServiceCollection();
        services.AddLogging(b => b.ClearProviders().AddProvider(log.ProviderFor(id)).SetMinimumLevel(Environment.GetEnvironmentVariable("CACHEGUARD_SOAK_DEBUG") == "1" ? LogLevel.Debug : LogLevel.Information));
        ICoalescingCacheBuilder builder = services.AddCoalescingCache(o => Configure(o, settings));
        SoakRedis.AddRedisTier(builder, redisPort, settings);
        return new SoakNode(id, services.BuildServiceProvider());
    }

    /// <summary>The options every node runs with; docs/reliability.md lists them and the windows derived from them.</summary>
    public static void Configure(CoalescingCacheOptions options, SoakSettings settings)
    {
        options.DefaultExpiration = settings.L2Expiration;
        options.DefaultLocalExpiration = settings.L1Expiration;
        options.JitterRatio = settings.JitterRatio;
        options.DistributedCacheTimeout = settings.L2Timeout;
        options.LoaderHardTimeout = settings.LoaderHardTimeout;
        options.DistributedCacheCircuitBreakerDuration = settings.BreakerDuration;
        options.DistributedLoadLockTimeout = settings.LoadLockTimeout;
        options.IncludeKeysInTelemetry = true; // the soak's keys are not personal data, and findings need them
    }

    public ValueTask DisposeAsync() => Provider.DisposeAsync();
}
