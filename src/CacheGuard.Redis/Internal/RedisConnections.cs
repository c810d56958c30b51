using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// The container's one place where CacheGuard gets its <see cref="IConnectionMultiplexer"/>s: those it connects itself
/// (one per configuration, however many caches and features use it) and those the application provides (a
/// <c>ConnectionMultiplexerFactory</c>, called once). Disposes only the multiplexers it created.
/// </summary>
internal sealed class RedisConnections(ILoggerFactory? loggerFactory = null) : IAsyncDisposable, IDisposable
{
    private readonly ConcurrentDictionary<string, MultiplexerSource> _ownedByText = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<ConfigurationOptions, MultiplexerSource> _ownedByOptions = new(ReferenceEqualityComparer.Instance);
    private readonly ConcurrentDictionary<Func<Task<IConnectionMultiplexer>>, MultiplexerSource> _provided = new();
    private readonly ILogger _logger = loggerFactory?.CreateLogger("CacheGuard.Redis") ?? NullLogger.Instance;
    private int _disposed;

    /// <summary>
    /// Gets the source for a configuration string: one multiplexer per distinct string, however many caches and features
    /// use it, connected in the background with CacheGuard's defaults (see <see cref="ApplyDefaults"/>).
    /// </summary>
    public MultiplexerSource ForConfiguration(string configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _ownedByText.GetOrAdd(configuration, static (text, self) => self.Create(RedisConfigurationText.Parse(text, "Configuration")), this);
    }

    /// <summary>Gets the source for a configuration object (one multiplexer per instance; the object is cloned, never changed).</summary>
    public MultiplexerSource ForConfiguration(ConfigurationOptions configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _ownedByOptions.GetOrAdd(configuration, static (options, self) => self.Create(options.Clone()), this);
    }

    private MultiplexerSource Create(ConfigurationOptions options)
    {
        ApplyDefaults(options);
        ILogger logger = _logger;
        return new MultiplexerSource(() => ConnectAsync(options, logger), RedisConfigurationText.Describe(options));
    }

    /// <summary>Gets the source that calls the application's <paramref name="factory"/> once and shares its multiplexer.</summary>
    public MultiplexerSource ForFactory(Func<Task<IConnectionMultiplexer>> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        return factory.Target is MultiplexerSource source
            ? source // already one of ours (a post-configured RedisCacheOptions)
            : _provided.GetOrAdd(factory, static f => new MultiplexerSource(f, "the application's ConnectionMultiplexerFactory"));
    }

    /// <summary>
    /// CacheGuard's defaults for a multiplexer it connects: <see cref="BacklogPolicy.FailFast"/> (a command issued while
    /// disconnected fails at once instead of waiting out its timeout in a queue), no abort when the first connect fails
    /// (the app starts while Redis is down, and connects when it is back), and reconnect attempts every 250 ms to 2 s
    /// rather than StackExchange.Redis's 2.5 s to 10 s, so a returning server is used again within seconds.
    /// </summary>
    internal static ConfigurationOptions ApplyDefaults(ConfigurationOptions options)
    {
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.AbortOnConnectFail = false;
        options.ReconnectRetryPolicy = new ExponentialRetry(250, 2_000);
        return options;
    }

    private static async Task<IConnectionMultiplexer> ConnectAsync(ConfigurationOptions options, ILogger logger)
    {
        ConnectionMultiplexer multiplexer = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
        if (!multiplexer.IsConnected)
        {
            Log.RedisNotYetConnected(logger, RedisConfigurationText.Describe(options));
        }

        return multiplexer;
    }

    /// <inheritdoc />
    /// <remarks>For a container disposed synchronously: closes what is connected now, and what is still connecting once it is.</remarks>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (MultiplexerSource source in _ownedByText.Values.Concat(_ownedByOptions.Values))
        {
            source.DisposeOwned(_logger);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (MultiplexerSource source in _ownedByText.Values.Concat(_ownedByOptions.Values))
        {
            await source.DisposeOwnedAsync(_logger).ConfigureAwait(false);
        }
    }
}

/// <summary>One shared multiplexer, obtained once (lazily) and handed to everyone who asks.</summary>
internal sealed class MultiplexerSource
{
    private readonly Lazy<Task<IConnectionMultiplexer>> _multiplexer;

    public MultiplexerSource(Func<Task<IConnectionMultiplexer>> connect, string description)
    {
        _multiplexer = new(() => Task.Run(connect), LazyThreadSafetyMode.ExecutionAndPublication);
        Description = description;
    }

    public MultiplexerSource(IConnectionMultiplexer multiplexer, string description)
    {
        _multiplexer = new(Task.FromResult(multiplexer));
        Description = description;
    }

    /// <summary>Gets what this source connects to, for messages: endpoints only, never credentials.</summary>
    public string Description { get; }

    /// <summary>Gets the multiplexer once it exists, or <see langword="null"/> while it is being created (or creating it failed).</summary>
    public IConnectionMultiplexer? Current => _multiplexer.IsValueCreated && _multiplexer.Value.IsCompletedSuccessfully ? _multiplexer.Value.Result : null;

    /// <summary>Gets the multiplexer, creating it on first use; <c>RedisCacheOptions.ConnectionMultiplexerFactory</c> points here.</summary>
    public Task<IConnectionMultiplexer> GetAsync() => _multiplexer.Value;

    internal void DisposeOwned(ILogger logger)
    {
        if (_multiplexer.IsValueCreated)
        {
            _ = _multiplexer.Value.ContinueWith(
                static (connect, state) =>
                {
                    if (connect.IsCompletedSuccessfully)
                    {
                        connect.Result.Dispose();
                    }
                    else
                    {
                        Log.MultiplexerDisposeFailed((ILogger)state!, "(never connected)", connect.Exception!.GetBaseException());
                    }
                },
                logger,
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
    }

    internal async ValueTask DisposeOwnedAsync(ILogger logger)
    {
        if (!_multiplexer.IsValueCreated)
        {
            return;
        }

        try
        {
            IConnectionMultiplexer multiplexer = await _multiplexer.Value.ConfigureAwait(false);
            await multiplexer.DisposeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Disposing at container shutdown: a failure to connect or close is logged, never thrown.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.MultiplexerDisposeFailed(logger, Description, ex);
        }
    }
}
