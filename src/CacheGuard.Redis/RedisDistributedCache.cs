using System.Buffers;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Redis;

/// <summary>
/// An <see cref="IDistributedCache"/> on a <see cref="RedisConnection"/>, storing entries exactly as Microsoft's
/// <c>RedisCache</c> does, so both can share one Redis during a migration.
/// </summary>
/// <remarks>
/// <para>Layout: the key is <see cref="InstanceName"/> + key (no separator); the value is a hash with fields
/// <c>absexp</c> (UTC ticks of the absolute expiration, or -1), <c>sldexp</c> (ticks of the sliding expiration, or -1)
/// and <c>data</c>. A set is <c>HSET</c> plus <c>EXPIRE</c> (whole seconds: the shorter of the time to the absolute
/// expiration and the sliding expiration) in one write; a get is <c>HMGET absexp sldexp data</c>, then <c>EXPIRE</c>
/// again for a sliding entry; a refresh is the same without <c>data</c>; a remove is <c>DEL</c>.</para>
/// <para>Failures throw (<see cref="RedisConnectionException"/>, <see cref="RedisTimeoutException"/>,
/// <see cref="RedisServerException"/>), as <c>RedisCache</c> does: CacheGuard's core treats them as a miss. The
/// synchronous members block the calling thread on the asynchronous ones; prefer the asynchronous members.</para>
/// </remarks>
public sealed class RedisDistributedCache : IBufferDistributedCache, IBatchDistributedCache
{
    private readonly RedisConnection _connection;
    private readonly byte[] _prefix;
    private readonly TimeProvider _time;

    /// <summary>Initializes a new instance of the <see cref="RedisDistributedCache"/> class. The cache does not own (or dispose) the connection.</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="instanceName">The raw prefix of every key (<c>RedisCacheOptions.InstanceName</c>), or <see langword="null"/> for none.</param>
    /// <param name="timeProvider">The clock for expirations, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    public RedisDistributedCache(RedisConnection connection, string? instanceName = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        _connection = connection;
        InstanceName = instanceName ?? string.Empty;
        _prefix = Resp.Utf8Bytes(InstanceName);
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Gets the connection the cache uses.</summary>
    /// <value>The connection given to the constructor.</value>
    public RedisConnection Connection => _connection;

    /// <summary>Gets the prefix of every key.</summary>
    /// <value>The instance name; empty for none.</value>
    public string InstanceName { get; }

    /// <inheritdoc />
    public byte[]? Get(string key) => Wait(GetCoreAsync(key, CancellationToken.None));

    /// <inheritdoc />
    public Task<byte[]?> GetAsync(string key, CancellationToken token = default) => GetCoreAsync(key, token).AsTask();

    /// <inheritdoc />
    public bool TryGet(string key, IBufferWriter<byte> destination) => Wait(TryGetAsync(key, destination, CancellationToken.None));

    /// <inheritdoc />
    public async ValueTask<bool> TryGetAsync(string key, IBufferWriter<byte> destination, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(destination);
        CacheEntryReply reply = await _connection.SendAsync(new HashGetOperation(_prefix, key, HashGetMode.Pooled), token).ConfigureAwait(false);
        try
        {
            if (reply.Data is null || IsExpired(reply))
            {
                return false;
            }

            await RefreshIfSlidingAsync(key, reply, token).ConfigureAwait(false);
            destination.Write(reply.Data.AsSpan(0, reply.Length));
            return true;
        }
        finally
        {
            reply.Return();
        }
    }

    /// <summary>
    /// Reads many entries in one round trip: one <c>HMGET</c> per key, all written in a single flush, then one more
    /// round trip only if some entries have a sliding expiration to refresh.
    /// </summary>
    /// <param name="keys">The keys.</param>
    /// <param name="cancellationToken">Abandons the wait.</param>
    /// <returns>The payloads in the order of <paramref name="keys"/>; <see langword="null"/> where an entry is missing or expired.</returns>
    /// <exception cref="RedisConnectionException">The connection is down.</exception>
    public async ValueTask<byte[]?[]> GetManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        for (int i = 0; i < keys.Count; i++)
        {
            if (keys[i] is null)
            {
                throw new ArgumentException($"keys[{i}] is null.", nameof(keys));
            }
        }

        var result = new byte[]?[keys.Count];
        if (keys.Count == 0)
        {
            return result;
        }

        CacheEntryReply[] replies = await _connection.SendAsync(new BatchGetOperation(_prefix, keys), cancellationToken).ConfigureAwait(false);
        int sliding = 0;
        for (int i = 0; i < replies.Length; i++)
        {
            if (replies[i].Data is not null && !IsExpired(replies[i]))
            {
                result[i] = replies[i].Data;
                if (replies[i].SlidingTicks != CacheEntryReply.NotPresent)
                {
                    sliding++;
                }
            }
        }

        if (sliding > 0)
        {
            string[] slidingKeys = new string[sliding];
            long[] seconds = new long[sliding];
            for (int i = 0, j = 0; i < replies.Length; i++)
            {
                if (result[i] is not null && replies[i].SlidingTicks != CacheEntryReply.NotPresent)
                {
                    slidingKeys[j] = keys[i];
                    seconds[j++] = SlidingTtlSeconds(replies[i]);
                }
            }

            await _connection.SendAsync(new ExpireOperation(_prefix, slidingKeys, seconds), cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    /// <inheritdoc />
    public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => Wait(SetCoreAsync(key, new ReadOnlySequence<byte>(value ?? throw new ArgumentNullException(nameof(value))), options, CancellationToken.None));

    /// <inheritdoc />
    public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        ArgumentNullException.ThrowIfNull(value);
        return SetCoreAsync(key, new ReadOnlySequence<byte>(value), options, token).AsTask();
    }

    /// <inheritdoc />
    public void Set(string key, ReadOnlySequence<byte> value, DistributedCacheEntryOptions options) => Wait(SetCoreAsync(key, value, options, CancellationToken.None));

    /// <inheritdoc />
    public ValueTask SetAsync(string key, ReadOnlySequence<byte> value, DistributedCacheEntryOptions options, CancellationToken token = default) =>
        SetCoreAsync(key, value, options, token);

    /// <inheritdoc />
    public void Refresh(string key) => Wait(RefreshCoreAsync(key, CancellationToken.None));

    /// <inheritdoc />
    public Task RefreshAsync(string key, CancellationToken token = default) => RefreshCoreAsync(key, token).AsTask();

    /// <inheritdoc />
    public void Remove(string key) => Wait(RemoveCoreAsync(key, CancellationToken.None));

    /// <inheritdoc />
    public Task RemoveAsync(string key, CancellationToken token = default) => RemoveCoreAsync(key, token).AsTask();

    /// <summary>The TTL in whole seconds for a new entry, as <c>RedisCache</c> computes it; -1 for none.</summary>
    internal static long GetTtlSeconds(DateTimeOffset now, DateTimeOffset? absoluteExpiration, TimeSpan? slidingExpiration)
    {
        if (absoluteExpiration is { } absolute)
        {
            double untilAbsolute = (absolute - now).TotalSeconds;
            return (long)(slidingExpiration is { } sliding ? Math.Min(untilAbsolute, sliding.TotalSeconds) : untilAbsolute);
        }

        return slidingExpiration is { } slidingOnly ? (long)slidingOnly.TotalSeconds : -1;
    }

    private static T Wait<T>(ValueTask<T> pending) => pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();

    private static void Wait(ValueTask pending)
    {
        if (!pending.IsCompletedSuccessfully)
        {
            pending.AsTask().GetAwaiter().GetResult();
        }
    }

    private async ValueTask<byte[]?> GetCoreAsync(string key, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(key);
        CacheEntryReply reply = await _connection.SendAsync(new HashGetOperation(_prefix, key, HashGetMode.Array), token).ConfigureAwait(false);
        if (reply.Data is null || IsExpired(reply))
        {
            return null;
        }

        await RefreshIfSlidingAsync(key, reply, token).ConfigureAwait(false);
        return reply.Data;
    }

    private async ValueTask SetCoreAsync(string key, ReadOnlySequence<byte> value, DistributedCacheEntryOptions options, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(options);
        DateTimeOffset now = _time.GetUtcNow();
        DateTimeOffset? absolute = GetAbsoluteExpiration(now, options);
        long ttl = GetTtlSeconds(now, absolute, options.SlidingExpiration);
        var operation = new SetOperation(
            _prefix,
            key,
            value,
            absolute?.UtcTicks ?? CacheEntryReply.NotPresent,
            options.SlidingExpiration?.Ticks ?? CacheEntryReply.NotPresent,
            ttl);
        await _connection.SendAsync(operation, token).ConfigureAwait(false);
    }

    private async ValueTask RefreshCoreAsync(string key, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(key);
        CacheEntryReply reply = await _connection.SendAsync(new HashGetOperation(_prefix, key, HashGetMode.Metadata), token).ConfigureAwait(false);
        if (reply.Exists && !IsExpired(reply))
        {
            await RefreshIfSlidingAsync(key, reply, token).ConfigureAwait(false);
        }
    }

    private async ValueTask RemoveCoreAsync(string key, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(key);
        await _connection.SendAsync(new DeleteOperation(_prefix, key), token).ConfigureAwait(false);
    }

    private ValueTask<bool> RefreshIfSlidingAsync(string key, in CacheEntryReply reply, CancellationToken token) =>
        reply.SlidingTicks == CacheEntryReply.NotPresent
            ? new(false)
            : _connection.SendAsync(new ExpireOperation(_prefix, [key], [SlidingTtlSeconds(reply)]), token);

    /// <summary>The TTL a read of a sliding entry resets: the sliding window, cut short by the absolute expiration.</summary>
    private long SlidingTtlSeconds(in CacheEntryReply reply)
    {
        var sliding = TimeSpan.FromTicks(reply.SlidingTicks);
        if (reply.AbsoluteTicks == CacheEntryReply.NotPresent)
        {
            return (long)sliding.TotalSeconds;
        }

        TimeSpan remaining = new DateTimeOffset(reply.AbsoluteTicks, TimeSpan.Zero) - _time.GetUtcNow();
        return (long)(remaining <= sliding ? remaining : sliding).TotalSeconds;
    }

    private bool IsExpired(in CacheEntryReply reply) =>
        reply.AbsoluteTicks != CacheEntryReply.NotPresent && reply.AbsoluteTicks <= _time.GetUtcNow().UtcTicks;

    private static DateTimeOffset? GetAbsoluteExpiration(DateTimeOffset now, DistributedCacheEntryOptions options)
    {
        if (options.AbsoluteExpiration is { } absolute && absolute <= now)
        {
            throw new ArgumentOutOfRangeException(nameof(options), absolute, "DistributedCacheEntryOptions.AbsoluteExpiration must be in the future.");
        }

        if (options.AbsoluteExpirationRelativeToNow is { } relative)
        {
            return now + relative;
        }

        return options.AbsoluteExpiration;
    }
}
