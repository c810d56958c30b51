namespace CacheGuard;

/// <summary>
/// An L2 that reads many keys in one round trip. <c>GetOrLoadManyAsync</c> uses it when the distributed cache implements
/// it (CacheGuard.Redis's <c>RedisDistributedCache</c> does, with pipelined <c>HMGET</c>s); otherwise it issues the
/// reads concurrently.
/// </summary>
public interface IBatchDistributedCache
{
    /// <summary>Reads <paramref name="keys"/> in one round trip.</summary>
    /// <param name="keys">The L2 keys.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The payloads in the order of <paramref name="keys"/>; <see langword="null"/> where an entry is missing.</returns>
    ValueTask<byte[]?[]> GetManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default);
}
