using System.Buffers;
using CacheGuard.Redis.Internal;

namespace CacheGuard.Redis;

public sealed partial class RedisConnection
{
    private readonly Lock _subscriptionLock = new();

    // Copy-on-write handler arrays, so a message is dispatched without holding the lock. Guarded by _subscriptionLock.
    private readonly Dictionary<string, Action<string, ReadOnlyMemory<byte>>[]> _subscriptions = new(StringComparer.Ordinal);

    /// <summary>Publishes <paramref name="message"/> on <paramref name="channel"/> (<c>PUBLISH</c>, on the interactive connection).</summary>
    /// <param name="channel">The channel.</param>
    /// <param name="message">The payload.</param>
    /// <param name="cancellationToken">Abandons the wait.</param>
    /// <returns>The number of subscribers that received the message.</returns>
    /// <exception cref="RedisConnectionException">The connection is down.</exception>
    public ValueTask<long> PublishAsync(string channel, ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(channel);
        return SendAsync(new PublishOperation(channel, message), cancellationToken);
    }

    /// <summary>
    /// Subscribes <paramref name="handler"/> to <paramref name="channel"/> on the dedicated subscription connection,
    /// and keeps it subscribed across reconnects until the returned subscription is disposed.
    /// </summary>
    /// <param name="channel">The channel (exact name, not a pattern).</param>
    /// <param name="handler">Called with the channel and a payload the handler may keep. Runs on the connection's reader loop: keep it short and hand longer work off. An exception it throws is logged.</param>
    /// <param name="cancellationToken">Abandons the wait for the server's confirmation (then nothing stays subscribed).</param>
    /// <returns>The subscription, once the server confirmed it.</returns>
    /// <exception cref="RedisConnectionException">The subscription connection is down; nothing stays subscribed.</exception>
    /// <remarks>Messages published while the connection is down are lost; watch <see cref="ConnectionRestored"/> to resynchronize.</remarks>
    public async Task<RedisSubscription> SubscribeAsync(string channel, Action<string, ReadOnlyMemory<byte>> handler, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(channel);
        ArgumentNullException.ThrowIfNull(handler);
        PhysicalConnection connection = await _subscriber.GetAsync(cancellationToken).ConfigureAwait(false);
        var confirm = new CommandOperation(new RedisCommand("SUBSCRIBE", channel));
        confirm.RegisterCancellation(cancellationToken);
        lock (_subscriptionLock)
        {
            _subscriptions[channel] = _subscriptions.TryGetValue(channel, out Action<string, ReadOnlyMemory<byte>>[]? handlers) ? [.. handlers, handler] : [handler];
            if (!connection.TryEnqueue(confirm))
            {
                confirm.Fail(_subscriber.NotConnected());
            }
        }

        try
        {
            await confirm.Task.ConfigureAwait(false);
        }
        catch (Exception)
        {
            await UnsubscribeAsync(channel, handler, CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        return new RedisSubscription(this, channel, handler);
    }

    internal async Task UnsubscribeAsync(string channel, Action<string, ReadOnlyMemory<byte>> handler, CancellationToken cancellationToken)
    {
        CommandOperation? unsubscribe = null;
        lock (_subscriptionLock)
        {
            if (!_subscriptions.TryGetValue(channel, out Action<string, ReadOnlyMemory<byte>>[]? handlers))
            {
                return;
            }

            int index = Array.IndexOf(handlers, handler);
            if (index < 0)
            {
                return;
            }

            if (handlers.Length > 1)
            {
                _subscriptions[channel] = [.. handlers.AsSpan(0, index), .. handlers.AsSpan(index + 1)];
                return;
            }

            _subscriptions.Remove(channel);

            // Sent under the lock, so a SUBSCRIBE for the same channel that follows is also queued after it.
            PhysicalConnection? connection = _subscriber.Current;
            if (connection is not null)
            {
                unsubscribe = new CommandOperation(new RedisCommand("UNSUBSCRIBE", channel));
                unsubscribe.RegisterCancellation(cancellationToken);
                if (!connection.TryEnqueue(unsubscribe))
                {
                    return;
                }
            }
        }

        if (unsubscribe is null)
        {
            return;
        }

        try
        {
            await unsubscribe.Task.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException or OperationCanceledException)
        {
            // A lost connection drops the subscription on the server, and it is not restored: nothing is left to undo.
            Log.UnsubscribeFailed(_logger, channel, ex);
        }
    }

    /// <summary>Subscribes a new subscription connection to every channel, before it is used.</summary>
    internal async Task ResubscribeAsync(PhysicalConnection connection, CancellationToken cancellationToken)
    {
        List<CommandOperation> confirmations = [];
        lock (_subscriptionLock)
        {
            foreach (string channel in _subscriptions.Keys)
            {
                var subscribe = new CommandOperation(new RedisCommand("SUBSCRIBE", channel));
                subscribe.RegisterCancellation(cancellationToken);
                if (!connection.TryEnqueue(subscribe))
                {
                    throw _subscriber.NotConnected();
                }

                confirmations.Add(subscribe);
            }
        }

        foreach (CommandOperation confirmation in confirmations)
        {
            await confirmation.Task.ConfigureAwait(false);
        }
    }

    internal void DispatchMessage(string channel, byte[] payload)
    {
        Action<string, ReadOnlyMemory<byte>>[]? handlers;
        lock (_subscriptionLock)
        {
            _subscriptions.TryGetValue(channel, out handlers);
        }

        if (handlers is null)
        {
            return;
        }

        foreach (Action<string, ReadOnlyMemory<byte>> handler in handlers)
        {
            try
            {
                handler(channel, payload);
            }
            catch (Exception ex)
            {
                Log.SubscriptionHandlerFailed(_logger, channel, ex);
            }
        }
    }

    private sealed class PublishOperation : PendingOperation<long>
    {
        private readonly string _channel;
        private readonly ReadOnlyMemory<byte> _message;

        public PublishOperation(string channel, ReadOnlyMemory<byte> message)
        {
            _channel = channel;
            _message = message;
        }

        public override void Write(PooledBufferWriter writer)
        {
            writer.Write("*3\r\n$7\r\nPUBLISH\r\n"u8);
            Resp.WriteBulk(writer, _channel);
            Resp.WriteBulk(writer, _message.Span);
        }

        public override void OnReply(ref SequenceReader<byte> reader, int index)
        {
            if (IsError(ref reader))
            {
                Fail(ReadError(ref reader));
                return;
            }

            reader.Advance(1);
            Succeed(Resp.ReadLineInt64(ref reader));
        }
    }
}
