using CacheGuard.Redis.Internal;
using StackExchange.Redis;

namespace CacheGuard.Redis;

/// <summary>The receiving side: the subscription, message handling, and what a lost subscriber connection means.</summary>
public sealed partial class RedisBackplane
{
    /// <summary>Gets the multiplexer and follows its connection events; <see langword="null"/> once disposed.</summary>
    private async Task<IConnectionMultiplexer?> AttachAsync()
    {
        IConnectionMultiplexer multiplexer = await _source.GetAsync().WaitObservedAsync(_stopping.Token).ConfigureAwait(false);
        lock (_lock)
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return null;
            }

            if (_multiplexer is null)
            {
                _multiplexer = multiplexer;
                multiplexer.ConnectionFailed += OnConnectionFailed;
                multiplexer.ConnectionRestored += OnConnectionRestored;
            }
        }

        return multiplexer;
    }

    private async Task SubscribeLoopAsync()
    {
        await Task.Yield(); // never run the loop inside the caller's Subscribe
        TimeSpan delay = RetryBaseDelay;
        for (int attempt = 1; !_stopping.IsCancellationRequested; attempt++)
        {
            try
            {
                IConnectionMultiplexer? multiplexer = await AttachAsync().ConfigureAwait(false);
                if (multiplexer is null)
                {
                    return;
                }

                ChannelMessageQueue subscription = await multiplexer.GetSubscriber().SubscribeAsync(_channel).ConfigureAwait(false);
                bool keep;
                lock (_lock)
                {
                    keep = Volatile.Read(ref _disposed) == 0;
                    if (keep)
                    {
                        _subscription = subscription;
                    }
                }

                if (!keep)
                {
                    await UnsubscribeQuietlyAsync(subscription, _logger, Channel).ConfigureAwait(false);
                    return;
                }

                subscription.OnMessage(OnMessage); // one message at a time, in order
                Log.BackplaneSubscribed(_logger, Channel);
                if (attempt > 1)
                {
                    ClearAll(); // the caches ran unsubscribed for a while: they may hold what others changed since
                }

                _subscribed.TrySetResult();
                return;
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return; // the multiplexer is gone, and with it the container this backplane belongs to
            }
#pragma warning disable CA1031 // Any failure to subscribe is logged and retried with backoff: the backplane must not die in the background.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.BackplaneSubscribeFailed(_logger, Channel, attempt, ex);
            }

            if (!await DelayAsync(delay, null).ConfigureAwait(false))
            {
                return;
            }

            delay = Min(delay * 2, RetryMaxDelay);
        }
    }

    /// <summary>Handles one message: parses it and evicts; messages arrive one at a time, in order.</summary>
    private void OnMessage(ChannelMessage message)
    {
        ServerAnswered?.Invoke();
        ReadOnlyMemory<byte> payload = (ReadOnlyMemory<byte>)message.Message;
        var entries = new List<CacheInvalidation>();
        if (!BackplaneMessage.TryDecode(payload.Span, out string sender, entries, out string? error))
        {
            Interlocked.Increment(ref _dropped);
            Log.BackplaneMessageMalformed(_logger, Channel, payload.Length, error!);
            return;
        }

        Interlocked.Increment(ref _received);
        if (sender == _id)
        {
            return;
        }

        Registration[] sinks = Volatile.Read(ref _sinks);
        foreach (CacheInvalidation entry in entries)
        {
            foreach (Registration registration in sinks)
            {
                if (registration.CacheName == entry.CacheName && registration.Sink.InstanceId != sender)
                {
                    Deliver(registration, entry);
                }
            }
        }
    }

    private void Deliver(Registration registration, CacheInvalidation entry)
    {
        try
        {
            if (BackplaneMessage.IsClear(entry))
            {
                registration.Sink.OnMessagesMayHaveBeenLost();
            }
            else
            {
                registration.Sink.OnInvalidation(entry);
            }
        }
#pragma warning disable CA1031 // One cache's failure must not stop the others' invalidations: log it.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.BackplaneSinkFailed(_logger, registration.CacheName, ex);
        }
    }

    private void ClearAll()
    {
        foreach (Registration registration in Volatile.Read(ref _sinks))
        {
            Deliver(registration, new CacheInvalidation(registration.CacheName, null, null));
        }
    }

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Subscription && _subscribed.Task.IsCompleted)
        {
            Interlocked.CompareExchange(ref _lostTimestamp, Math.Max(1, _time.GetTimestamp()), 0);
            Log.BackplaneSubscriptionLost(_logger, Channel);
        }
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            Interlocked.Exchange(ref _interactiveRestored, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            return;
        }

        if (_subscribed.Task.IsCompleted)
        {
            long lost = Interlocked.Exchange(ref _lostTimestamp, 0);
            ClearAll();
            long blind = lost == 0 ? 0 : (long)_time.GetElapsedTime(lost).TotalMilliseconds;
            Log.BackplaneSubscriptionRestored(_logger, Channel, blind, Volatile.Read(ref _sinks).Length);
            _ = ClearOnceResubscribedAsync(sender as IConnectionMultiplexer);
        }
    }

    /// <summary>
    /// Clears the caches again once the subscriber connection answers a ping: StackExchange.Redis subscribes again as it
    /// restores the connection, and a message published between the first clear and that subscription would be missed.
    /// The ping goes over the subscriber connection after the subscription, so after its answer nothing is missed.
    /// </summary>
    private async Task ClearOnceResubscribedAsync(IConnectionMultiplexer? multiplexer)
    {
        if (multiplexer is null)
        {
            return;
        }

        try
        {
            await multiplexer.GetSubscriber().PingAsync().WaitObservedAsync(FlushTimeout, _time, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or OperationCanceledException or ObjectDisposedException)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            Log.BackplaneResubscribeUnconfirmed(_logger, Channel, ex); // clear anyway: too much is safe, too little is not
        }

        ClearAll();
    }
}
