namespace CacheGuard;

/// <summary>
/// Reads many L2 keys in one round trip. <c>GetOrLoadManyAsync</c> uses it when the distributed cache implements it, or
/// when one is registered beside the L2 with <c>WithBatchDistributedCache</c> (CacheGuard.Redis registers one that reads
/// Microsoft's <c>RedisCache</c> layout with pipelined commands); otherwise it issues the reads concurrently.
/// </summary>
public interface IBatchDistributedCache
{
    /// <summary>Reads <paramref name="keys"/> in one round trip.</summary>
    /// <param name="keys">The L2 keys.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The payloads in the order of <paramref name="keys"/>; <see langword="null"/> where an entry is missing.</returns>
    ValueTask<byte[]?[]> GetManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken = default);
}
