using CacheGuard.Redis;

namespace CacheGuard.Redis.Tests;

internal static class TestConnections
{
    /// <summary>Settings for tests: short timeouts and fast reconnects so failures show within seconds.</summary>
    public static RedisConfiguration For(RedisServer server, Action<RedisConfiguration>? tweak = null)
    {
        RedisConfiguration configuration = RedisConfiguration.Parse(server.Configuration);
        configuration.ConnectTimeout = TimeSpan.FromSeconds(3);
        configuration.AsyncTimeout = TimeSpan.FromSeconds(5);
        configuration.ReconnectBaseDelay = TimeSpan.FromMilliseconds(20);
        configuration.ReconnectMaxDelay = TimeSpan.FromMilliseconds(200);
        tweak?.Invoke(configuration);
        return configuration;
    }

    public static async Task<long> TtlAsync(RedisConnection connection, string key) =>
        (await connection.ExecuteAsync(new RedisCommand("TTL", key))).ToInt64();

    public static TimeSpan Guard => TimeSpan.FromSeconds(15);
}
