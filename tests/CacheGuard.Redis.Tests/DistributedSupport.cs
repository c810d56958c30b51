using System.Collections.Concurrent;
using System.Diagnostics;
using CacheGuard;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Redis.Tests;

/// <summary>One node of a fleet: its own service provider, cache, connection and (when registered) backplane and lock.</summary>
internal sealed class Node : IAsyncDisposable
{
    private Node(ServiceProvider provider, CapturingLoggerProvider logs)
    {
        Provider = provider;
        Logs = logs;
        Cache = provider.GetRequiredService<ICoalescingCache>(); // creates the cache, which subscribes to the backplane
        Connection = provider.GetRequiredKeyedService<RedisConnection>(string.Empty);
    }

    public ServiceProvider Provider { get; }

    public ICoalescingCache Cache { get; }

    public RedisConnection Connection { get; }

    public CapturingLoggerProvider Logs { get; }

    public RedisBackplane Backplane => Provider.GetRequiredKeyedService<RedisBackplane>(string.Empty);

    public RedisDistributedLoadLock Lock => Provider.GetRequiredKeyedService<RedisDistributedLoadLock>(string.Empty);

    /// <summary>Builds a node on <paramref name="server"/> with instance name "fleet:"; <paramref name="build"/> adds features.</summary>
    public static async Task<Node> StartAsync(RedisServer server, Action<CoalescingCacheOptions>? configure = null, Action<ICoalescingCacheBuilder>? build = null)
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
                o.ConfigurationOptions = TestConnections.For(server);
                o.InstanceName = "fleet:";
            });
        build?.Invoke(builder);
        var node = new Node(services.BuildServiceProvider(), logs);
        await node.Connection.ConnectAsync();
        return node;
    }

    public ValueTask DisposeAsync() => Provider.DisposeAsync();
}

/// <summary>Polls a condition until it holds or a deadline passes; the deadline only guards against hangs.</summary>
internal static class Eventually
{
    public static async Task HoldsAsync(Func<Task<bool>> condition, string what, TimeSpan? within = null)
    {
        TimeSpan limit = within ?? TestConnections.Guard;
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
    private readonly ConcurrentQueue<(string Category, EventId Id, LogLevel Level, string Message)> _entries = new();

    public IReadOnlyList<(string Category, EventId Id, LogLevel Level, string Message)> Entries => [.. _entries];

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
            owner._entries.Enqueue((category, eventId, logLevel, formatter(state, exception)));
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
