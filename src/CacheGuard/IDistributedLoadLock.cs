namespace CacheGuard;

/// <summary>
/// A per-key lock shared by every node, so that on an L2 miss one load runs across the whole fleet while the other
/// nodes wait for its result in L2. CacheGuard.Redis provides one (<c>SET NX PX</c> with an owner token).
/// </summary>
/// <remarks>
/// Liveness wins over strictness: the cache gives up waiting after
/// <see cref="CoalescingCacheOptions.DistributedLoadLockTimeout"/> and loads itself; an owner that dies loses the lock
/// when its lease expires; and if the lock cannot be reached the cache loads without it. Implementations should throw
/// for transport failures; the cache logs them and proceeds without the lock.
/// </remarks>
public interface IDistributedLoadLock
{
    /// <summary>Tries to take the lock for <paramref name="key"/>.</summary>
    /// <param name="key">The lock's key: the cache derives it from the cache key, in a key space no cache entry or tag stamp can reach; use it verbatim.</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <returns>The held lock (dispose it to release; it extends its own lease while held), or <see langword="null"/> if another owner holds it.</returns>
    ValueTask<IAsyncDisposable?> TryAcquireAsync(string key, CancellationToken cancellationToken);

    /// <summary>Waits until the lock for <paramref name="key"/> is released or <paramref name="timeout"/> passes.</summary>
    /// <param name="key">The lock's key, as passed to <see cref="TryAcquireAsync"/>.</param>
    /// <param name="timeout">The longest wait.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns><see langword="true"/> if the lock was released; <see langword="false"/> on timeout.</returns>
    ValueTask<bool> WaitForReleaseAsync(string key, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Tries to take the locks for many keys at once (a batch load); implementations should do it in one round trip.</summary>
    /// <param name="keys">The lock keys, distinct.</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <returns>For each key, in order, the held lock, or <see langword="null"/> where another owner holds it.</returns>
    /// <remarks>The default implementation takes the locks one by one with <see cref="TryAcquireAsync"/>; if one attempt throws, the locks already taken are released and the exception propagates.</remarks>
    async ValueTask<IAsyncDisposable?[]> TryAcquireManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var leases = new IAsyncDisposable?[keys.Count];
        try
        {
            for (int i = 0; i < leases.Length; i++)
            {
                leases[i] = await TryAcquireAsync(keys[i], cancellationToken).ConfigureAwait(false);
            }

            return leases;
        }
        catch
        {
            foreach (IAsyncDisposable? lease in leases)
            {
                if (lease is not null)
                {
                    await lease.DisposeAsync().ConfigureAwait(false);
                }
            }

            throw;
        }
    }
}
