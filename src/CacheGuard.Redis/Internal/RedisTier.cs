using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// The Redis tier of one coalescing cache: its L2 (a <see cref="RedisCache"/>), the multiplexer that L2, the health
/// source, the batch reader, the backplane and the load lock all share, and the key prefix they all use.
/// </summary>
internal sealed class RedisTier : IDisposable
{
    private readonly Lazy<RedisCacheHealth> _health;
    private readonly Lazy<RedisCacheBatchReader> _batchReader;

    public RedisTier(IDistributedCache cache, MultiplexerSource connection, string? instanceName, ILoggerFactory? loggerFactory, TimeProvider? timeProvider)
    {
        Cache = cache;
        Connection = connection;
        InstanceName = instanceName ?? string.Empty;
        LoggerFactory = loggerFactory;
        TimeProvider = timeProvider;
        ILogger? logger = loggerFactory?.CreateLogger("CacheGuard.Redis");
        _health = new(() => new RedisCacheHealth(connection, logger, timeProvider));
        _batchReader = new(() => new RedisCacheBatchReader(connection, instanceName, logger, timeProvider));
    }

    /// <summary>Gets the L2: Microsoft's <see cref="RedisCache"/>, whose multiplexer is <see cref="Connection"/>'s.</summary>
    public IDistributedCache Cache { get; }

    /// <summary>Gets the shared multiplexer.</summary>
    public MultiplexerSource Connection { get; }

    /// <summary>Gets the raw prefix of every key and channel (<c>RedisCacheOptions.InstanceName</c>); empty for none.</summary>
    public string InstanceName { get; }

    public ILoggerFactory? LoggerFactory { get; }

    public TimeProvider? TimeProvider { get; }

    public RedisCacheHealth Health => _health.Value;

    public RedisCacheBatchReader BatchReader => _batchReader.Value;

    /// <summary>Stops the health source. The multiplexer belongs to <see cref="RedisConnections"/> (or the application), the L2 to whoever created it.</summary>
    public void Dispose()
    {
        if (_health.IsValueCreated)
        {
            _health.Value.Dispose();
        }
    }
}
