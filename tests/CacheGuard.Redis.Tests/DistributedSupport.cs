using System.Collections.Concurrent;
using System.Diagnostics;
using CacheGuard;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>One node of a fleet: its own service provider, cache, multiplexer and (when registered) backplane and lock.</summary>
internal sealed class Node : IAsyncDisposable
{
    private Node(ServiceProvider provider, CapturingLoggerProvider logs)
    {
        Provider = provider;
        Logs = logs;
        Cache = provider.GetRequiredService<ICoalescingCache>(); // creates the cache, which subscribes to the backplane
        Multiplexer = provider.GetRequiredService<IConnectionMultiplexer>();
    }

    public ServiceProvider Provider { get; }

    public ICoalescingCache Cache { get; }

    /// <summary>Gets the node's one multiplexer, shared by its L2, backplane and lock.</summary>
    public IConnectionMultiplexer Multiplexer { get; }

    public CapturingLoggerProvider Logs { get; }

    public RedisBackplane Backplane => Provider.GetRequiredKeyedService<RedisBackplane>(string.Empty);

    public RedisDistributedLoadLock Lock => Provider.GetRequiredKeyedService<RedisDistributedLoadLock>(string.Empty);

    /// <summary>Builds a node on <paramref name="server"/> with instance name "fleet:"; <paramref name="build"/> adds features.</summary>
    public static Task<Node> StartAsync(RedisServer server, Action<CoalescingCacheOptions>? configure = null, Action<ICoalescingCacheBuilder>? build = null) =>
        StartAsync(TestRedis.Options(server), "fleet:", configure, build);

    /// <summary>Builds a node on the Redis <paramref name="redis"/> points at, keys prefixed with <paramref name="instanceName"/>.</summary>
    public static async Task<Node> StartAsync(ConfigurationOptions redis, string instanceName, Action<CoalescingCacheOptions>? configure = null, Action<ICoalescingCacheBuilder>? build = null)
    {
        var logs = new CapturingLoggerProvider();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        ICoalescingCacheBuilder builder = services
            .AddCoalescingCache(o =>
            {
                o.DefaultExpiration = TimeSpan.FromMinutes(10);
                o.JitterRatio = 0;
                configure?.Invoke(o);
            })
            .WithRedis(o =>
            {
                o.ConfigurationOptions = redis;
                o.InstanceName = instanceName;
            });
        build?.Invoke(builder);
        var node = new Node(services.BuildServiceProvider(), logs);
        await Eventually.HoldsAsync(() => node.Multiplexer.IsConnected, "the node is connected");
        return node;
    }

    public ValueTask DisposeAsync() => Provider.DisposeAsync();
}

/// <summary>Polls a condition until it holds or a deadline passes; the deadline only guards against hangs.</summary>
internal static class Eventually
{
    public static async Task HoldsAsync(Func<Task<bool>> condition, string what, TimeSpan? within = null)
    {
        TimeSpan limit = within ?? TestRedis.Guard;
        var clock = Stopwatch.StartNew();
        for (int attempt = 0; attempt < 100_000; attempt++)
        {
            if (await condition())
            {
                return;
            }

            if (clock.Elapsed > limit)
            {
                break;
            }

            await Task.Delay(attempt < 20 ? 1 : 10);
        }

        Assert.Fail($"Not within {limit.TotalSeconds:0.#} s: {what}");
    }

    public static Task HoldsAsync(Func<bool> condition, string what, TimeSpan? within = null) =>
        HoldsAsync(() => Task.FromResult(condition()), what, within);
}

/// <summary>Keeps every log entry, so tests can assert on event ids.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<(string Category, EventId Id, LogLevel Level, string Message, Exception? Exception)> _entries = new();

    public IReadOnlyList<(string Category, EventId Id, LogLevel Level, string Message, Exception? Exception)> Entries => [.. _entries];

    public int Count(int eventId) => _entries.Count(e => e.Id.Id == eventId);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._entries.Enqueue((category, eventId, logLevel, formatter(state, exception), exception));
    }
}

/// <summary>A sink that records what a backplane delivers.</summary>
internal sealed class RecordingSink(string instanceId) : ICacheInvalidationSink
{
    private readonly ConcurrentQueue<CacheInvalidation> _received = new();
    private int _lost;

    public string InstanceId { get; } = instanceId;

    public IReadOnlyList<CacheInvalidation> Received => [.. _received];

    public int ReceivedCount => _received.Count;

    public int LostCount => Volatile.Read(ref _lost);

    public void OnInvalidation(CacheInvalidation invalidation) => _received.Enqueue(invalidation);

    public void OnMessagesMayHaveBeenLost() => Interlocked.Increment(ref _lost);
}
