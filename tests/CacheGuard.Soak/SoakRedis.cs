using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Soak;

/// <summary>
/// Everything the soak knows about CacheGuard.Redis, in one place so it is easy to adapt when that package changes:
/// how a node registers its Redis tier (L2, backplane, load lock), the connection string, and how an L2 entry is laid
/// out in Redis (for the corrupt-payload fault, which writes under live keys with its own raw client).
/// </summary>
internal static class SoakRedis
{
    /// <summary>The raw prefix of every Redis key the fleet writes (<c>InstanceName</c>, as in Microsoft's RedisCache).</summary>
    public const string InstanceName = "soak:";

    /// <summary>
    /// The connection string every node uses: StackExchange.Redis syntax, which both CacheGuard.Redis clients read.
    /// The command and connect timeouts are short so a paused server (3-6 s) outlasts every client-side timeout;
    /// abortConnect=false keeps a node starting while Redis is down.
    /// </summary>
    public static string Configuration(int port, SoakSettings settings)
    {
        int timeout = (int)settings.RedisCommandTimeout.TotalMilliseconds;
        return $"127.0.0.1:{port},connectTimeout={timeout},asyncTimeout={timeout},syncTimeout={timeout},keepAlive=2,abortConnect=false";
    }

    /// <summary>Adds Redis as L2, the pub/sub backplane and the distributed load lock, as the fleet runs them.</summary>
    public static ICoalescingCacheBuilder AddRedisTier(ICoalescingCacheBuilder builder, int port, SoakSettings settings) =>
        builder
            .WithRedis(o =>
            {
                o.Configuration = Configuration(port, settings);
                o.InstanceName = InstanceName;
            })
            .WithBackplane()
            .WithRedisLoadLock(); // the lock's lease and poll interval stay at their defaults (5 s, renewed while loading; 100 ms)

    /// <summary>
    /// Whether a node's log event says it could not use Redis: the core's L2 read/write/remove failures and timeouts
    /// (1-4, 6, 7), the breaker opening (12), a failed announcement (17) and an unusable load lock (18), or any warning
    /// of the Redis package (connection lost or not opened, publish or subscription failures, lock release failures).
    /// A node reporting such trouble outside a scheduled fault opens an "unscheduled" window in the health timeline.
    /// </summary>
    public static bool IsRedisTrouble(string category, int eventId, LogLevel level) =>
        level == LogLevel.Warning
        && (category.StartsWith("CacheGuard.Redis", StringComparison.Ordinal)
            || (category == "CacheGuard" && eventId is 12 or 17 or 18 or 19 or 21)); // breaker opened, announce failed, lock failed, L2 failing, lock wait ended

    /// <summary>The Redis key of a cache key (CacheGuard's KeyPrefix is empty in the soak).</summary>
    public static string RedisKey(string cacheKey) => InstanceName + cacheKey;

    /// <summary>
    /// The commands that put <paramref name="data"/> under <paramref name="cacheKey"/> as an L2 entry: a hash in
    /// RedisCache's layout (<c>absexp</c>, <c>sldexp</c> as ticks or -1, <c>data</c>) with a TTL.
    /// </summary>
    public static object[][] WriteEntryCommands(string cacheKey, byte[] data, TimeSpan ttl)
    {
        string key = RedisKey(cacheKey);
        long absolute = DateTimeOffset.UtcNow.Add(ttl).UtcTicks;
        return
        [
            ["DEL", key],
            ["HSET", key, "absexp", absolute, "sldexp", -1L, "data", data],
            ["EXPIRE", key, (long)ttl.TotalSeconds],
        ];
    }

    /// <summary>Reads the raw L2 entry of <paramref name="cacheKey"/>: its <c>data</c> field and remaining TTL in ms (-2: no key).</summary>
    public static async Task<(byte[]? Data, long TtlMilliseconds)> ReadEntryAsync(int port, string cacheKey)
    {
        string key = RedisKey(cacheKey);
        TimeSpan timeout = TimeSpan.FromSeconds(5);
        (string type, _) = await RawRedis.ExecuteRawAsync(port, timeout, "TYPE", key);
        (string ttl, _) = await RawRedis.ExecuteRawAsync(port, timeout, "PTTL", key);
        long milliseconds = long.Parse(ttl.TrimStart(':'), System.Globalization.CultureInfo.InvariantCulture);
        if (type != "+hash")
        {
            return (null, milliseconds);
        }

        (_, byte[]? data) = await RawRedis.ExecuteRawAsync(port, timeout, "HGET", key, "data");
        return (data, milliseconds);
    }

    /// <summary>Commands that leave a value of the wrong Redis type under the key (a string where a hash belongs).</summary>
    public static object[][] WrongTypeCommands(string cacheKey, byte[] data, TimeSpan ttl)
    {
        string key = RedisKey(cacheKey);
        return [["DEL", key], ["SET", key, data, "EX", (long)ttl.TotalSeconds]];
    }
}
