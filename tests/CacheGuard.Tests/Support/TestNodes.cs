using CacheGuard.Internal;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Tests.Support;

/// <summary>
/// Builds caches the way an application does, through DI (<c>AddCoalescingCache</c> and the builder), so tests of
/// several nodes, backplanes, load locks and named caches depend only on the public registration API.
/// </summary>
public static class TestNodes
{
    /// <summary>The name every node of a test cluster shares (a backplane delivers messages by cache name).</summary>
    public const string ClusterName = "cluster";

    internal static DefaultCoalescingCache Create(
        FakeTimeProvider time,
        IDistributedCache? l2 = null,
        Action<CoalescingCacheOptions>? configure = null,
        ICacheBackplane? backplane = null,
        IDistributedLoadLock? loadLock = null,
        LogCapture? logs = null)
    {
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        if (logs is not null)
        {
            services.AddSingleton<ILoggerFactory>(logs);
        }

        ICoalescingCacheBuilder builder = services.AddCoalescingCache(o =>
        {
            o.Name = ClusterName;
            o.JitterRatio = 0;
            configure?.Invoke(o);
        });
        if (l2 is not null)
        {
            builder.WithDistributedCache(l2);
        }
        else
        {
            builder.WithoutDistributedCache();
        }

        if (backplane is not null)
        {
            builder.WithBackplane(_ => backplane);
        }

        if (loadLock is not null)
        {
            builder.WithDistributedLoadLock(_ => loadLock);
        }

        return (DefaultCoalescingCache)services.BuildServiceProvider().GetRequiredService<ICoalescingCache>();
    }
}

/// <summary>Counts loader runs and the most that ever ran at once (one loader per key means a maximum of 1).</summary>
public sealed class ConcurrencyProbe
{
    private int _running;
    private int _max;
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public int Running => Volatile.Read(ref _running);

    public int Max => Volatile.Read(ref _max);

    /// <summary>Runs a loader's body, counted from its (synchronous) start to its end.</summary>
    public async Task<T> Run<T>(Func<Task<T>> body)
    {
        Interlocked.Increment(ref _calls);
        int now = Interlocked.Increment(ref _running);
        for (int seen = Max; now > seen && Interlocked.CompareExchange(ref _max, now, seen) != seen; seen = Max)
        {
        }

        try
        {
            return await body().ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }
}

/// <summary>The data source is down: the exception tests make loaders throw, so they can tell it from any other.</summary>
public sealed class SourceDownException : Exception
{
    public SourceDownException()
        : base("The data source is down.")
    {
    }

    public SourceDownException(string message)
        : base(message)
    {
    }

    public SourceDownException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
