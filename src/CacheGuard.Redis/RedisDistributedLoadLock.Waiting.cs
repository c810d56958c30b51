using CacheGuard.Redis.Internal;
using StackExchange.Redis;

namespace CacheGuard.Redis;

/// <summary>The waiting side: the release notification, and one watcher that checks every waited-for key per interval.</summary>
public sealed partial class RedisDistributedLoadLock
{
    private void StartNotifications(IConnectionMultiplexer multiplexer)
    {
        lock (_waitersLock)
        {
            if (_multiplexer is null && Volatile.Read(ref _disposed) == 0)
            {
                _multiplexer = multiplexer;
                multiplexer.ConnectionRestored += OnConnectionRestored;
            }

            _notifications ??= SubscribeAsync(multiplexer);
        }
    }

    private async Task SubscribeAsync(IConnectionMultiplexer multiplexer)
    {
        await Task.Yield();
        try
        {
            ChannelMessageQueue subscription = await multiplexer.GetSubscriber().SubscribeAsync(_releaseChannel).WaitObservedAsync(_stopping.Token).ConfigureAwait(false);
            bool keep;
            lock (_waitersLock)
            {
                keep = Volatile.Read(ref _disposed) == 0;
                if (keep)
                {
                    _subscription = subscription;
                }
            }

            if (keep)
            {
                subscription.OnMessage(OnReleased);
            }
            else
            {
                await UnsubscribeQuietlyAsync(subscription).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Disposed before the server confirmed.
        }
#pragma warning disable CA1031 // Whatever failed, waiters still notice the key is gone: log it; the next acquire or wait subscribes again.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.LoadLockNotificationsUnavailable(_logger, ReleaseChannel, ex);
            lock (_waitersLock)
            {
                _notifications = null;
            }
        }
    }

    private void OnReleased(ChannelMessage message)
    {
        ServerAnswered?.Invoke(); // before waking anyone: the waiters read L2 next, and must not find it marked unavailable
        Complete((string?)message.Message, null);
    }

    /// <summary>Wakes the waiters of <paramref name="lockKey"/>: released (no exception) or failed (Redis unreachable).</summary>
    private void Complete(string? lockKey, Exception? failure)
    {
        if (lockKey is null)
        {
            return;
        }

        Waiter? waiter;
        lock (_waitersLock)
        {
            if (_waiters.Remove(lockKey, out waiter))
            {
                waiter.Detached = true;
            }
        }

        if (failure is null)
        {
            waiter?.Released.TrySetResult(true);
        }
        else
        {
            waiter?.Released.TrySetException(failure);
        }
    }

    private Waiter Register(string lockKey)
    {
        lock (_waitersLock)
        {
            if (!_waiters.TryGetValue(lockKey, out Waiter? waiter))
            {
                waiter = new Waiter();
                _waiters.Add(lockKey, waiter);
            }

            waiter.Count++;
            _watcher ??= WatchAsync();
            return waiter;
        }
    }

    private void Unregister(string lockKey, Waiter waiter)
    {
        lock (_waitersLock)
        {
            if (--waiter.Count == 0 && !waiter.Detached)
            {
                _waiters.Remove(lockKey);
            }
        }
    }

    /// <summary>
    /// While anyone waits: every poll interval, one pipelined <c>EXISTS</c> for every key waited for, waking the waiters
    /// of keys that are gone. A check in flight is awaited, not repeated, so a paused server gets one batch, answered
    /// the moment it resumes. A check that fails (disconnected, timed out, refused) fails the waiters: the lock is
    /// unavailable. Nothing but disposal ends the watcher while anyone waits: a watcher that died would leave waiters to
    /// the release notification alone, which a reconnect can lose.
    /// </summary>
    private async Task WatchAsync()
    {
        await Task.Yield();
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_pollInterval, _time, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            string[] keys;
            lock (_waitersLock)
            {
                if (_waiters.Count == 0)
                {
                    _watcher = null;
                    return;
                }

                keys = [.. _waiters.Keys];
            }

            try
            {
                IConnectionMultiplexer multiplexer = _source.Current ?? await _source.GetAsync().ConfigureAwait(false);
                RedisCacheBatchReader.ThrowIfDisconnected(multiplexer, _source.Description);
                IBatch batch = multiplexer.GetDatabase().CreateBatch();
                var exists = new Task<bool>[keys.Length];
                for (int i = 0; i < keys.Length; i++)
                {
                    exists[i] = batch.KeyExistsAsync(keys[i]);
                }

                batch.Execute();
                await Task.WhenAll(exists).WaitObservedAsync(_stopping.Token).ConfigureAwait(false);
                ServerAnswered?.Invoke();
                for (int i = 0; i < keys.Length; i++)
                {
                    if (!exists[i].Result)
                    {
                        Complete(keys[i], null);
                    }
                }
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // Whatever failed (disconnected, timed out, a server error such as LOADING after a restart), the watcher must live on.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                foreach (string key in keys)
                {
                    Complete(key, ex); // the lock cannot be watched: its waiters load without it
                }
            }
        }
    }

    /// <summary>The callers on this node waiting for one lock key. Count and Detached are guarded by the owner's _waitersLock.</summary>
    private sealed class Waiter
    {
        public Waiter() =>
            // A waiter that timed out just before its key's check failed leaves nobody to observe that failure.
            Released.Task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

        public TaskCompletionSource<bool> Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Count { get; set; }

        public bool Detached { get; set; }
    }
}
