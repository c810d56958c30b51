using System.Globalization;
using System.Threading.Channels;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace CacheGuard.Redis;

/// <summary>
/// Keeps the L1 of every node coherent over Redis pub/sub: changes are announced on one channel, batched, and every
/// other node evicts what changed. Registered by <c>.WithBackplane()</c>, on the cache's shared
/// <see cref="IConnectionMultiplexer"/> (its subscriber connection).
/// </summary>
/// <remarks>
/// <para><see cref="PublishAsync"/> only queues: one writer drains the queue into messages of at most 64 KB (several
/// invalidations each) and publishes them, retrying with backoff while Redis is unreachable. More than 100,000 queued
/// invalidations of one cache collapse into one "drop everything" message for it. Nothing here throws at a caller.</para>
/// <para>A node ignores its own messages (each carries the sender's instance id). A message that does not parse is
/// logged and dropped. Messages are handled in order, one at a time. When the subscriber connection is lost and
/// restored (StackExchange.Redis then subscribes again), the node cannot know what it missed, so every subscribed cache
/// drops its whole L1 (and the event is logged).</para>
/// </remarks>
public sealed partial class RedisBackplane : ICacheBackplane, IAsyncDisposable, IDisposable
{
    /// <summary>How many invalidations may wait to be published before a cache's are collapsed into one "drop everything".</summary>
    internal const int MaxPending = 100_000;

    private static readonly TimeSpan RetryBaseDelay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan RetryMaxDelay = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(2);

    private readonly MultiplexerSource _source;
    private readonly RedisChannel _channel;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly string _id = Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture);
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Guards _sinks (copy-on-write, read without the lock), _subscribing and _subscription.
    private readonly Lock _lock = new();
    private Registration[] _sinks = [];
    private Task? _subscribing;
    private ChannelMessageQueue? _subscription;
    private IConnectionMultiplexer? _multiplexer; // guarded by _lock; set once its events are followed

    private long _lostTimestamp; // when the subscription connection dropped; 0 while it is up
    private long _received;
    private long _dropped;
    private int _disposed;

    /// <summary>Initializes a new instance of the <see cref="RedisBackplane"/> class. Nothing is sent until the first change.</summary>
    /// <param name="multiplexer">The connection to publish and subscribe on; not disposed by the backplane.</param>
    /// <param name="channel">The pub/sub channel every node of the same cache uses.</param>
    /// <param name="logger">The logger, or <see langword="null"/> for none.</param>
    /// <param name="timeProvider">The clock for retry backoff, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    public RedisBackplane(IConnectionMultiplexer multiplexer, string channel, ILogger<RedisBackplane>? logger = null, TimeProvider? timeProvider = null)
        : this(new MultiplexerSource(multiplexer ?? throw new ArgumentNullException(nameof(multiplexer)), "the given multiplexer"), channel, logger, timeProvider)
    {
    }

    internal RedisBackplane(MultiplexerSource source, string channel, ILogger? logger, TimeProvider? timeProvider)
    {
        ArgumentException.ThrowIfNullOrEmpty(channel);
        _source = source;
        Channel = channel;
        _channel = RedisChannel.Literal(channel);
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _writer = WriteLoopAsync();
    }

    /// <summary>Gets the pub/sub channel.</summary>
    /// <value>The channel given to the constructor; <c>.WithBackplane()</c> uses <c>InstanceName + KeyPrefix + "__cacheguard:invalidations"</c>.</value>
    public string Channel { get; }

    /// <summary>Gets or sets what to call when a message arrives (the tier's health source clears a suspicion: the server answers).</summary>
    internal Action? ServerAnswered { get; set; }

    /// <summary>Gets a task that completes once the channel subscription is confirmed: a test hook.</summary>
    internal Task WhenSubscribed => _subscribed.Task;

    /// <summary>Gets how many well-formed messages arrived (own ones included): a test hook.</summary>
    internal long MessagesReceived => Interlocked.Read(ref _received);

    /// <summary>Gets how many malformed messages were dropped: a test hook.</summary>
    internal long MessagesDropped => Interlocked.Read(ref _dropped);

    /// <summary>Starts delivering other nodes' announcements for <paramref name="cacheName"/> to <paramref name="sink"/>.</summary>
    /// <param name="cacheName">The cache's name; only announcements of that name reach the sink.</param>
    /// <param name="sink">The cache.</param>
    /// <returns>Removes the sink when disposed.</returns>
    /// <remarks>The first call subscribes to <see cref="Channel"/> in the background, retrying until Redis answers; if that took more than one attempt, the sinks drop their L1 once it succeeds.</remarks>
    public IDisposable Subscribe(string cacheName, ICacheInvalidationSink sink)
    {
        ArgumentNullException.ThrowIfNull(cacheName);
        ArgumentNullException.ThrowIfNull(sink);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var registration = new Registration(this, cacheName, sink);
        lock (_lock)
        {
            _sinks = [.. _sinks, registration];
            _subscribing ??= SubscribeLoopAsync();
        }

        return registration;
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (!BeginDispose())
        {
            return;
        }

        // Give what is queued a bounded chance to go out, then stop.
        await Task.WhenAny(_writer, Task.Delay(FlushTimeout, _time)).ConfigureAwait(false);
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _writer.ConfigureAwait(false);
        Task? subscribing;
        ChannelMessageQueue? subscription;
        lock (_lock)
        {
            subscribing = _subscribing;
            subscription = _subscription;
            _subscription = null;
        }

        if (subscribing is not null)
        {
            await subscribing.ConfigureAwait(false);
        }

        subscription ??= TakeSubscription();
        if (subscription is not null)
        {
            await UnsubscribeQuietlyAsync(subscription, _logger, Channel).ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    /// <inheritdoc />
    /// <remarks>Unlike <see cref="DisposeAsync"/>, does not wait for queued announcements to be published.</remarks>
    public void Dispose()
    {
        if (!BeginDispose())
        {
            return;
        }

        _stopping.Cancel();
        lock (_lock)
        {
            if (_subscription is { } subscription)
            {
                _subscription = null;
                _ = UnsubscribeQuietlyAsync(subscription, _logger, Channel);
            }
        }
    }

    private bool BeginDispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return false;
        }

        lock (_lock)
        {
            if (_multiplexer is { } multiplexer)
            {
                multiplexer.ConnectionFailed -= OnConnectionFailed;
                multiplexer.ConnectionRestored -= OnConnectionRestored;
            }
        }

        _queue.Writer.TryComplete();
        return true;
    }

    private ChannelMessageQueue? TakeSubscription()
    {
        lock (_lock)
        {
            ChannelMessageQueue? subscription = _subscription;
            _subscription = null;
            return subscription;
        }
    }

    private static async Task UnsubscribeQuietlyAsync(ChannelMessageQueue subscription, ILogger logger, string channel)
    {
        try
        {
            await subscription.UnsubscribeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A fire-and-forget unsubscribe from Dispose: log whatever it threw, nobody else can observe it.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.UnsubscribeFailed(logger, channel, ex);
        }
    }

    /// <summary>Waits <paramref name="delay"/>, or less if <paramref name="wake"/> completes; false once stopping.</summary>
    private async Task<bool> DelayAsync(TimeSpan delay, Task? wake)
    {
        Task sleep = Task.Delay(delay, _time, _stopping.Token);
        await (wake is null ? sleep : Task.WhenAny(sleep, wake)).ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        return !_stopping.IsCancellationRequested;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>One cache subscribed to this backplane.</summary>
    private sealed class Registration(RedisBackplane owner, string cacheName, ICacheInvalidationSink sink) : IDisposable
    {
        public string CacheName { get; } = cacheName;

        public ICacheInvalidationSink Sink { get; } = sink;

        public void Dispose()
        {
            lock (owner._lock)
            {
                int index = Array.IndexOf(owner._sinks, this);
                if (index >= 0)
                {
                    owner._sinks = [.. owner._sinks.AsSpan(0, index), .. owner._sinks.AsSpan(index + 1)];
                }
            }
        }
    }
}
