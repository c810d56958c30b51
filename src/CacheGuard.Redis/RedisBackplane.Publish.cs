using System.Collections.Concurrent;
using System.Threading.Channels;
using CacheGuard.Redis.Internal;
using StackExchange.Redis;

namespace CacheGuard.Redis;

/// <summary>The sending side: a queue drained by one writer into batched, size-bounded messages.</summary>
public sealed partial class RedisBackplane
{
    private readonly Channel<Pending> _queue = System.Threading.Channels.Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, string> _overflowed = new(StringComparer.Ordinal); // cache name -> sender
    private readonly Task _writer;
    private TaskCompletionSource _interactiveRestored = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _pendingCount;
    private long _published;
    private volatile Task? _holdWriter;

    /// <summary>Gets how many messages were published: a test hook.</summary>
    internal long MessagesPublished => Interlocked.Read(ref _published);

    /// <summary>Gets or sets a task the writer awaits before each drain, so a test can queue a burst: a test hook.</summary>
    internal Task? HoldWriter
    {
        get => _holdWriter;
        set => _holdWriter = value;
    }

    /// <summary>Queues an announcement; it is published in the background, batched with others.</summary>
    /// <param name="invalidation">What changed.</param>
    /// <param name="cancellationToken">Not used: queueing does not wait.</param>
    /// <returns>A completed task. Transport failures are retried and logged by the writer, never thrown.</returns>
    public ValueTask PublishAsync(CacheInvalidation invalidation, CancellationToken cancellationToken)
    {
        if (invalidation.CacheName is null)
        {
            throw new ArgumentException("The invalidation has no CacheName.", nameof(invalidation));
        }

        if (Volatile.Read(ref _disposed) != 0)
        {
            return ValueTask.CompletedTask; // the node is shutting down; its L1 goes with it
        }

        string sender = SenderFor(invalidation.CacheName);
        if (Interlocked.Increment(ref _pendingCount) > MaxPending)
        {
            Interlocked.Decrement(ref _pendingCount);
            if (_overflowed.TryAdd(invalidation.CacheName, sender))
            {
                Log.BackplaneQueueOverflowed(_logger, MaxPending, invalidation.CacheName, Channel);
            }

            return ValueTask.CompletedTask;
        }

        if (!_queue.Writer.TryWrite(new Pending(sender, invalidation)))
        {
            Interlocked.Decrement(ref _pendingCount); // completed by Dispose meanwhile
        }

        return ValueTask.CompletedTask;
    }

    private string SenderFor(string cacheName)
    {
        foreach (Registration registration in Volatile.Read(ref _sinks))
        {
            if (registration.CacheName == cacheName)
            {
                return registration.Sink.InstanceId;
            }
        }

        return _id;
    }

    private async Task WriteLoopAsync()
    {
        ChannelReader<Pending> reader = _queue.Reader;
        var batch = new List<CacheInvalidation>();
        try
        {
            while (await reader.WaitToReadAsync(_stopping.Token).ConfigureAwait(false))
            {
                if (_holdWriter is { } hold)
                {
                    await hold.WaitAsync(_stopping.Token).ConfigureAwait(false);
                }

                foreach (string cacheName in _overflowed.Keys)
                {
                    if (_overflowed.TryRemove(cacheName, out string? from))
                    {
                        await SendAsync(from, [new CacheInvalidation(cacheName, null, null)]).ConfigureAwait(false);
                    }
                }

                string sender = string.Empty;
                int size = 0;
                while (reader.TryRead(out Pending next))
                {
                    Interlocked.Decrement(ref _pendingCount);
                    CacheInvalidation entry = next.Invalidation;
                    int entrySize = BackplaneMessage.EntrySize(entry);
                    if (BackplaneMessage.HeaderSize(next.Sender) + entrySize > BackplaneMessage.MaxBytes)
                    {
                        Log.BackplaneEntryTooLarge(_logger, entry.CacheName, BackplaneMessage.MaxBytes);
                        entry = new CacheInvalidation(entry.CacheName, null, null);
                        entrySize = BackplaneMessage.EntrySize(entry);
                    }

                    if (batch.Count > 0 && (next.Sender != sender || size + entrySize > BackplaneMessage.MaxBytes))
                    {
                        await SendAsync(sender, batch).ConfigureAwait(false);
                        batch.Clear();
                    }

                    if (batch.Count == 0)
                    {
                        sender = next.Sender;
                        size = BackplaneMessage.HeaderSize(sender);
                    }

                    batch.Add(entry);
                    size += entrySize;
                }

                if (batch.Count > 0)
                {
                    await SendAsync(sender, batch).ConfigureAwait(false);
                    batch.Clear();
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Disposed: what is still queued is dropped with this node's L1.
        }
    }

    /// <summary>Publishes one message, retrying transport failures with backoff until it goes out or the backplane stops.</summary>
    private async Task SendAsync(string sender, List<CacheInvalidation> batch)
    {
        byte[] payload = BackplaneMessage.Encode(sender, batch);
        TimeSpan delay = RetryBaseDelay;
        for (int attempt = 0; ; attempt++)
        {
            Task restored = Volatile.Read(ref _interactiveRestored).Task;
            try
            {
                IConnectionMultiplexer multiplexer = await AttachAsync().ConfigureAwait(false) ?? throw new OperationCanceledException(_stopping.Token);
                await multiplexer.GetSubscriber().PublishAsync(_channel, payload).WaitObservedAsync(_stopping.Token).ConfigureAwait(false);
                Interlocked.Increment(ref _published);
                if (attempt > 0)
                {
                    Log.BackplanePublishRecovered(_logger, Channel, attempt);
                }

                return;
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException)
            {
                // Transient, ConnectionDisposed included: the client disposes a stalled physical connection (a paused
                // server) and reconnects; dropping the message would lose an invalidation. Should the multiplexer itself
                // be gone for good, the retries go on with backoff, logged once, until the backplane stops.
                if (attempt == 0)
                {
                    Log.BackplanePublishFailed(_logger, batch.Count, Channel, ex);
                }
            }
#pragma warning disable CA1031 // Not transient (a server error, a disposed multiplexer): drop this message, keep the writer alive.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.BackplanePublishRejected(_logger, Channel, batch.Count, ex);
                return;
            }

            if (!await DelayAsync(delay, restored).ConfigureAwait(false))
            {
                _stopping.Token.ThrowIfCancellationRequested();
            }

            delay = Min(delay * 2, RetryMaxDelay);
        }
    }

    private readonly record struct Pending(string Sender, CacheInvalidation Invalidation);
}
