using System.Globalization;

namespace CacheGuard.Internal;

/// <summary>
/// Working with other nodes: announcing changes on a backplane, evicting what other nodes announce, and taking the
/// distributed load lock on an L2 miss. Every part is optional and none can fail a caller.
/// </summary>
internal sealed partial class DefaultCoalescingCache
{
    private readonly ICacheBackplane? _backplane;
    private readonly IDisposable? _backplaneSubscription;
    private readonly IDistributedLoadLock? _loadLock;
    private readonly TimeSpan _loadLockTimeout;

    /// <summary>Gets this instance's identity on the backplane.</summary>
    public string InstanceId { get; } = Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture);

    public void OnInvalidation(CacheInvalidation invalidation)
    {
        if (invalidation.Key is { } key)
        {
            // A load of the key running here may have read L2 before the other node's write: don't let it cache that.
            _flights.Forget(key);
            _l1.Remove(key);
            _metrics.BackplaneEviction();
        }
        else if (invalidation.Tag == AllTag)
        {
            long now = _time.GetUtcNow().UtcTicks;
            _tags.GetOrAdd(AllTag, static _ => new TagState()).Record(now, now);
            _l1.Clear();
            _metrics.BackplaneEviction();
        }
        else if (invalidation.Tag is { } tag)
        {
            // The sender's clock is not ours: invalidate everything this node created up to now (never too little).
            long now = _time.GetUtcNow().UtcTicks;
            _tags.GetOrAdd(tag, static _ => new TagState()).Record(now, now);
            _metrics.BackplaneEviction();
        }
    }

    public void OnMessagesMayHaveBeenLost()
    {
        _l1.Clear();
        Log.LocalCacheCleared(_logger, _name);
    }

    /// <summary>Announces a change; a backplane failure is the backplane's to log, and never reaches the caller.</summary>
    private ValueTask PublishAsync(string? key, string? tag, CancellationToken cancellationToken)
    {
        if (_backplane is null)
        {
            return ValueTask.CompletedTask;
        }

        return Publish(this, new CacheInvalidation(_name, key, tag), cancellationToken);

        static async ValueTask Publish(DefaultCoalescingCache self, CacheInvalidation invalidation, CancellationToken cancellationToken)
        {
            try
            {
                await self._backplane!.PublishAsync(invalidation, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
#pragma warning disable CA1031 // A lost announcement is bounded by the L1 lifetime: log it, never fail the caller.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.BackplanePublishFailed(self._logger, self._name, ex);
            }
        }
    }

    /// <summary>
    /// On an L2 miss with the distributed lock on: take the key's lock, or wait for its owner and read the owner's
    /// result from L2. Returns the value found in L2, or the held lock (to release after the
    /// load is stored), or neither when this node should load without it.
    /// </summary>
    private async ValueTask<(IAsyncDisposable? Lease, CacheItem<T>? Found)> AcquireOrAwaitLoadAsync<T>(string key)
    {
        string l2Key = L2Key(key);
        try
        {
            IAsyncDisposable? lease = await _loadLock!.TryAcquireAsync(l2Key, CancellationToken.None).ConfigureAwait(false);
            if (lease is null)
            {
                await _loadLock.WaitForReleaseAsync(l2Key, _loadLockTimeout, CancellationToken.None).ConfigureAwait(false);
            }

            // Owner or not, L2 may hold the value now: another node may have stored it just before this one got the lock.
            CacheItem<T>? stored = await ReadL2Async<T>(key).ConfigureAwait(false);
            if (lease is null && !IsUsable(stored))
            {
                // The owner finished (or died) without a value for us: try once more to be the one that loads, so a
                // dead owner's waiters do not all load at once.
                lease = await _loadLock.TryAcquireAsync(l2Key, CancellationToken.None).ConfigureAwait(false);
                stored = lease is null ? stored : await ReadL2Async<T>(key).ConfigureAwait(false);
            }

            if (IsUsable(stored) && await SurvivesInvalidationAsync(stored!).ConfigureAwait(false))
            {
                if (lease is not null)
                {
                    await lease.DisposeAsync().ConfigureAwait(false);
                }

                return (null, stored);
            }

            return (lease, null);

            bool IsUsable(CacheItem<T>? item) => item is not null && item.ExpiresTicks > _time.GetUtcNow().UtcTicks;
        }
#pragma warning disable CA1031 // Liveness over strictness: without the lock, load as a single node would.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.LoadLockFailed(_logger, _name, LogKey(key), ex);
            return (null, null);
        }
    }
}
