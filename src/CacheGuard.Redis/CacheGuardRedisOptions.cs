namespace CacheGuard.Redis;

/// <summary>Configures the Redis cache registered by <c>AddCacheGuardRedisCache</c> or <c>WithRedis</c>.</summary>
/// <remarks>Mirrors <c>RedisCacheOptions</c>: set <see cref="Configuration"/> (a string) or <see cref="ConfigurationOptions"/> (an object, which wins).</remarks>
public sealed class CacheGuardRedisOptions
{
    /// <summary>Gets or sets the connection string: StackExchange.Redis style or a <c>redis://</c> URI (see <see cref="RedisConfiguration.Parse"/>).</summary>
    /// <value><see langword="null"/> by default.</value>
    public string? Configuration { get; set; }

    /// <summary>Gets or sets the configuration as an object; used instead of <see cref="Configuration"/> when set.</summary>
    /// <value><see langword="null"/> by default.</value>
    public RedisConfiguration? ConfigurationOptions { get; set; }

    /// <summary>Gets or sets the raw prefix of every key, as <c>RedisCacheOptions.InstanceName</c> (no separator is added).</summary>
    /// <value><see langword="null"/> by default: no prefix.</value>
    public string? InstanceName { get; set; }

    internal RedisConfiguration Resolve() =>
        ConfigurationOptions
        ?? (Configuration is { Length: > 0 } text
            ? RedisConfiguration.Parse(text)
            : throw new InvalidOperationException($"Set {nameof(CacheGuardRedisOptions)}.{nameof(Configuration)} or {nameof(ConfigurationOptions)} to reach a Redis server."));
}
