using CacheGuard.Internal;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Model;

/// <summary>One cache node of a run, as the runner sees it: the public API plus what it waits on at the end.</summary>
internal interface IModelNode : IDisposable
{
    ICoalescingCache Cache { get; }

    /// <summary>Background work still running (timed-out loads, refreshes, announcements, replays).</summary>
    int BackgroundCount { get; }

    /// <summary>This node's identity on the in-memory backplane, so its own messages skip it; null when it uses none.</summary>
    ICacheInvalidationSink? Sink { get; }
}

/// <summary>Builds the nodes of a run. The harness targets the core; its self-tests target a reference cache.</summary>
internal delegate IModelNode[] ModelNodeFactory(ModelConfig config, FakeTimeProvider time, ModelDistributedCache? l2, InMemoryBackplane? backplane);

/// <summary>The core under test: <see cref="DefaultCoalescingCache"/>, built with the options every run uses.</summary>
internal sealed class CoreNode(DefaultCoalescingCache cache) : IModelNode
{
    private static int s_runs;

    public ICoalescingCache Cache => cache;

    public int BackgroundCount => cache.BackgroundCount;

    public ICacheInvalidationSink? Sink => cache;

    public void Dispose() => cache.Dispose();

    /// <summary>
    /// The one place the harness builds a cache: the internal constructor, as <see cref="TestCaches.Create"/> uses it,
    /// plus the backplane (which that helper does not take). Both nodes share a name, as a backplane requires.
    /// </summary>
    public static IModelNode[] Create(ModelConfig config, FakeTimeProvider time, ModelDistributedCache? l2, InMemoryBackplane? backplane)
    {
        string name = "model-" + Interlocked.Increment(ref s_runs);
        var nodes = new IModelNode[config.NodeCount];
        for (int n = 0; n < nodes.Length; n++)
        {
            var options = new CoalescingCacheOptions
            {
                Name = name,
                JitterRatio = 0,
                DefaultExpiration = ModelTimings.Expiration,
                DefaultLocalExpiration = config.ShortLocalLifetime ? ModelTimings.ShortLocalExpiration : null,
                DistributedCacheTimeout = ModelTimings.L2Timeout,
                FailSafeMaxDuration = ModelTimings.FailSafeMax,
                FailSafeThrottleDuration = ModelTimings.FailSafeThrottle,
                AllowTimedOutLoaderBackgroundCompletion = config.BackgroundCompletion,
                DistributedCacheCircuitBreakerThreshold = ModelTimings.BreakerThreshold,
                DistributedCacheCircuitBreakerWindow = ModelTimings.BreakerWindow,
                DistributedCacheCircuitBreakerDuration = ModelTimings.BreakerDuration,
                TagCheckInterval = ModelTimings.TagCheckInterval,
            };
            nodes[n] = new CoreNode(new DefaultCoalescingCache(
                options, l2, time, loggerFactory: null, meterFactory: null, serializers: null, random: static () => 0.5, backplane: backplane));
        }

        return nodes;
    }
}
