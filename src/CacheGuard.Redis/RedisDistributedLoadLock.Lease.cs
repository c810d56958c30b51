using System.Collections.Concurrent;
using CacheGuard.Redis.Internal;
using StackExchange.Redis;

namespace CacheGuard.Redis;

/// <summary>The owning side: a held lease renews itself; its release is a compare-and-delete, retried until it lands or the lease is over.</summary>
public sealed partial class RedisDistributedLoadLock
{
    // Deletes the key only if it still holds this owner's token.
    private const string ReleaseScript = "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

    // Extends the key's lease only if it still holds this owner's token.
    private const string RenewScript = "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('pexpire',KEYS[1],ARGV[2]) else return 0 end";

    private readonly ConcurrentDictionary<Lease, byte> _unreleased = new();
    private ITimer? _retryTimer; // guarded by _waitersLock
    private int _retrying;

    /// <summary>Gets how many releases wait to be retried: a test hook.</summary>
    internal int UnreleasedCount => _unreleased.Count;

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Interactive && !_unreleased.IsEmpty)
        {
            _ = RetryReleasesAsync();
        }
    }

    /// <summary>Deletes the lease's key if it is still the owner's, then announces the release. True once settled (released, or no longer ours).</summary>
    private async Task<bool> TryReleaseAsync(Lease lease, bool isRetry = false)
    {
        try
        {
            IConnectionMultiplexer multiplexer = _source.Current ?? await _source.GetAsync().ConfigureAwait(false);
            RedisCacheBatchReader.ThrowIfDisconnected(multiplexer, _source.Description);
            RedisResult deleted = await multiplexer.GetDatabase().ScriptEvaluateAsync(ReleaseScript, [lease.LockKey], [lease.Token]).ConfigureAwait(false);
            if ((long)deleted == 1)
            {
                await PublishReleaseAsync(multiplexer, lease.LockKey).ConfigureAwait(false);
            }

            return true;
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
        {
            if (lease.Expired)
            {
                Log.LoadLockReleaseAbandoned(_logger, lease.LockKey);
                return true; // the lease ran out meanwhile: Redis has dropped the key itself
            }

            _unreleased.TryAdd(lease, 0);
            if (!isRetry)
            {
                Log.LoadLockReleaseFailed(_logger, lease.LockKey, ex);
            }

            StartRetrying();

            return false;
        }
        catch (Exception ex) when (ex is RedisServerException or ObjectDisposedException)
        {
            Log.LoadLockReleaseFailed(_logger, lease.LockKey, ex); // not transient: the lease expires on its own
            return true;
        }
    }

    private async Task PublishReleaseAsync(IConnectionMultiplexer multiplexer, string lockKey)
    {
        try
        {
            await multiplexer.GetSubscriber().PublishAsync(_releaseChannel, lockKey).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException or RedisServerException)
        {
            Log.LoadLockNotifyFailed(_logger, lockKey, ex); // waiters see the key gone at their next check
        }
    }

    private void StartRetrying()
    {
        lock (_waitersLock)
        {
            if (Volatile.Read(ref _disposed) == 0)
            {
                _retryTimer ??= _time.CreateTimer(static state => _ = ((RedisDistributedLoadLock)state!).RetryReleasesAsync(), this, _pollInterval, _pollInterval);
            }
        }
    }

    /// <summary>Stops the retry timer: when disposing, or when no release is left (checked under the lock, so one queued meanwhile keeps it).</summary>
    private void StopRetrying(bool disposing = false)
    {
        lock (_waitersLock)
        {
            if (!disposing && !_unreleased.IsEmpty)
            {
                return;
            }

            _retryTimer?.Dispose();
            _retryTimer = null;
        }
    }

    /// <summary>Retries every failed release once (one pass at a time); stops the timer when none is left.</summary>
    private async Task RetryReleasesAsync()
    {
        if (Interlocked.Exchange(ref _retrying, 1) != 0)
        {
            return;
        }

        try
        {
            foreach (Lease lease in _unreleased.Keys)
            {
                if (lease.Expired)
                {
                    _unreleased.TryRemove(lease, out _);
                    Log.LoadLockReleaseAbandoned(_logger, lease.LockKey);
                    continue;
                }

                _unreleased.TryRemove(lease, out _);
                if (await TryReleaseAsync(lease, isRetry: true).ConfigureAwait(false))
                {
                    Log.LoadLockReleaseRetried(_logger, lease.LockKey);
                }
            }
        }
        finally
        {
            StopRetrying();
            Volatile.Write(ref _retrying, 0);
        }
    }

    /// <summary>A held lock: renews itself until disposed, then releases if still its owner.</summary>
    private sealed class Lease : IAsyncDisposable
    {
        private readonly RedisDistributedLoadLock _owner;
        private readonly ITimer _renewal;
        private long _validUntil; // timestamp after which Redis has surely dropped the key
        private int _renewing;
        private int _released;

        public Lease(RedisDistributedLoadLock owner, string lockKey, string token)
        {
            _owner = owner;
            LockKey = lockKey;
            Token = token;
            Extend();
            _renewal = owner._time.CreateTimer(static state => ((Lease)state!).Renew(), this, owner._renewEvery, owner._renewEvery);
        }

        public string LockKey { get; }

        public string Token { get; }

        public bool Expired => _owner._time.GetTimestamp() > Volatile.Read(ref _validUntil);

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0)
            {
                return;
            }

            await _renewal.DisposeAsync().ConfigureAwait(false);
            await _owner.TryReleaseAsync(this).ConfigureAwait(false);
        }

        /// <summary>Records a successful SET or renewal: its reply came after Redis started the lease, so this is never early.</summary>
        private void Extend()
        {
            TimeProvider time = _owner._time;
            long ticks = (long)(_owner._lease.TotalSeconds * time.TimestampFrequency);
            Volatile.Write(ref _validUntil, time.GetTimestamp() + ticks);
        }

        private void Renew()
        {
            if (Volatile.Read(ref _released) == 0 && Interlocked.Exchange(ref _renewing, 1) == 0)
            {
                _ = RenewAsync();
            }
        }

        private async Task RenewAsync()
        {
            try
            {
                IConnectionMultiplexer multiplexer = _owner._source.Current ?? await _owner._source.GetAsync().ConfigureAwait(false);
                long leaseMilliseconds = (long)_owner._lease.TotalMilliseconds;
                RedisResult reply = await multiplexer.GetDatabase().ScriptEvaluateAsync(RenewScript, [LockKey], [Token, leaseMilliseconds]).ConfigureAwait(false);
                if ((long)reply == 1)
                {
                    Extend();
                }
                else if (Volatile.Read(ref _released) == 0)
                {
                    Log.LoadLockLost(_owner._logger, LockKey);
                    await _renewal.DisposeAsync().ConfigureAwait(false); // not ours any more: stop renewing
                }
            }
#pragma warning disable CA1031 // A failed renewal is retried at the next tick; the loader must not notice.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.LoadLockRenewFailed(_owner._logger, LockKey, ex);
            }
            finally
            {
                Volatile.Write(ref _renewing, 0);
            }
        }
    }
}
