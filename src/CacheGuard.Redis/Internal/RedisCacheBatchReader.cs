using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// Reads many entries of Microsoft's <c>RedisCache</c> (version 10 layout) in one round trip: one
/// <c>HMGET key absexp sldexp data</c> per key under the same <c>InstanceName</c> prefix, sent together as one
/// StackExchange.Redis batch (on a cluster, one pipeline per node, in parallel). As <c>RedisCache.GetAsync</c> does,
/// a found entry with a sliding expiration gets its TTL reset to the sliding window, capped by its absolute expiration;
/// those <c>EXPIRE</c>s are sent without waiting for their replies, so the read stays one round trip.
/// </summary>
internal sealed class RedisCacheBatchReader : IBatchDistributedCache
{
    private const long NotPresent = -1;
    private static readonly RedisValue[] Fields = ["absexp", "sldexp", "data"];

    private readonly MultiplexerSource _source;
    private readonly RedisKey _prefix;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;

    public RedisCacheBatchReader(MultiplexerSource source, string? instanceName, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        _source = source;
        _prefix = string.IsNullOrEmpty(instanceName) ? default : (RedisKey)Encoding.UTF8.GetBytes(instanceName);
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public async ValueTask<byte[]?[]> GetManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var result = new byte[]?[keys.Count];
        if (keys.Count == 0)
        {
            return result;
        }

        IConnectionMultiplexer multiplexer = await _source.GetAsync().WaitObservedAsync(cancellationToken).ConfigureAwait(false);
        ThrowIfDisconnected(multiplexer, _source.Description);
        IDatabase database = multiplexer.GetDatabase();
        IBatch batch = database.CreateBatch();
        var pending = new Task<RedisValue[]>[keys.Count];
        for (int i = 0; i < pending.Length; i++)
        {
            string key = keys[i] ?? throw new ArgumentException($"keys[{i}] is null.", nameof(keys));
            pending[i] = batch.HashGetAsync(_prefix.Append(key), Fields);
        }

        batch.Execute();
        await Task.WhenAll(pending).WaitObservedAsync(cancellationToken).ConfigureAwait(false);

        List<(RedisKey Key, TimeSpan Ttl)>? refresh = null;
        DateTimeOffset now = _time.GetUtcNow();
        for (int i = 0; i < pending.Length; i++)
        {
            RedisValue[] fields = pending[i].Result;
            if (fields.Length < 3 || fields[2].IsNull)
            {
                continue;
            }

            result[i] = (byte[]?)fields[2];
            if (SlidingTtl(fields[0], fields[1], now) is { } ttl)
            {
                (refresh ??= []).Add((_prefix.Append(keys[i]), ttl));
            }
        }

        if (refresh is not null)
        {
            Refresh(database, refresh);
        }

        return result;
    }

    /// <summary>Fails at once when the multiplexer knows it is disconnected, rather than queueing or waiting a timeout.</summary>
    internal static void ThrowIfDisconnected(IConnectionMultiplexer multiplexer, string description)
    {
        if (!multiplexer.IsConnected)
        {
            throw new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None, $"Redis at {description} is not connected.");
        }
    }

    /// <summary>The TTL <c>RedisCache</c> gives a sliding entry on a read: the window, cut short by the absolute expiration.</summary>
    internal static TimeSpan? SlidingTtl(RedisValue absolute, RedisValue sliding, DateTimeOffset now)
    {
        long slidingTicks = sliding.IsNull ? NotPresent : (long)sliding;
        if (slidingTicks == NotPresent)
        {
            return null;
        }

        var window = TimeSpan.FromTicks(slidingTicks);
        long absoluteTicks = absolute.IsNull ? NotPresent : (long)absolute;
        if (absoluteTicks == NotPresent)
        {
            return window;
        }

        TimeSpan remaining = new DateTimeOffset(absoluteTicks, TimeSpan.Zero) - now;
        return remaining <= window ? remaining : window;
    }

    private void Refresh(IDatabase database, List<(RedisKey Key, TimeSpan Ttl)> refresh)
    {
        try
        {
            IBatch batch = database.CreateBatch();
            foreach ((RedisKey key, TimeSpan ttl) in refresh)
            {
                _ = batch.KeyExpireAsync(key, ttl, ExpireWhen.Always, CommandFlags.FireAndForget);
            }

            batch.Execute();
        }
#pragma warning disable CA1031 // The entries were read; a refresh that cannot be sent only shortens their lifetime. Logged.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.SlidingRefreshFailed(_logger, ex);
        }
    }
}
