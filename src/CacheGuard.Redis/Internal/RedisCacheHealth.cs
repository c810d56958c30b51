using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// Tells the cache whether Redis can be reached, from the shared multiplexer's state: unavailable from the moment the
/// interactive connection fails (<see cref="IConnectionMultiplexer.ConnectionFailed"/>) until it is restored, and also
/// while the server does not answer: after a connection-level failure or timeout of any call, or a heartbeat
/// <c>PING</c> (one per second) unanswered for a second, until a <c>PING</c> is answered again (probed every 250 ms). A
/// hung server keeps its socket open, so only the heartbeat notices it. Logs one warning when Redis becomes
/// unavailable and one when it is back; per-event detail is Debug.
/// </summary>
internal sealed class RedisCacheHealth : IDistributedCacheHealth, IDisposable
{
    /// <summary>How often a suspect server is probed with <c>PING</c>.</summary>
    internal static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How often a server believed healthy is checked with <c>PING</c>.</summary>
    internal static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long a <c>PING</c> may go unanswered before the server is treated as hung.</summary>
    internal static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long after the server answered again (a suspicion cleared) a call's timeout is taken for late news rather
    /// than a new hang: a call sent while the server was frozen can be reported timed out just after it answers again
    /// (StackExchange.Redis checks deadlines about once a second). A server that hangs again meanwhile is caught by the
    /// next unanswered <c>PING</c>.
    /// </summary>
    internal static readonly TimeSpan LateTimeoutWindow = TimeSpan.FromSeconds(2);

    private readonly MultiplexerSource _source;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stopping = new();

    // Guards _multiplexer, _suspect, _suspectReason, _downSince and every change of _available.
    private readonly Lock _lock = new();
    private IConnectionMultiplexer? _multiplexer;
    private volatile bool _suspect;
    private string _suspectReason = string.Empty;
    private long _downSince;
    private long _recoveredAt = long.MinValue; // timestamp of the latest answer that cleared a suspicion
    private volatile bool _available = true;
    private int _disposed;

    public RedisCacheHealth(MultiplexerSource source, ILogger? logger = null, TimeProvider? timeProvider = null)
    {
        _source = source;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        Attached = AttachAsync(); // connect now, in the background: the first call should not pay for it
    }

    /// <inheritdoc />
    public event EventHandler? AvailabilityChanged;

    /// <inheritdoc />
    public bool IsAvailable => _available;

    /// <summary>Gets a task that completes once the health follows the multiplexer's events: a test hook.</summary>
    internal Task Attached { get; }

    /// <inheritdoc />
    /// <remarks>
    /// A <see cref="RedisConnectionException"/>, a socket or I/O failure, or a timeout counts: the server may be hung
    /// with its socket open, so Redis is treated as unavailable until a <c>PING</c> is answered (probed every 250 ms).
    /// A server's error reply (<see cref="RedisServerException"/>) concerns one command and does not count.
    /// </remarks>
    public bool IsConnectionFailure(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        string? reason = Classify(exception);
        if (reason is null || (IsTimeout(exception) && RecoveredWithin(LateTimeoutWindow)))
        {
            return false; // a server error concerns one command; a timeout just after the server answered again is late news of a call sent while it was frozen
        }

        MarkSuspect(reason);
        return true;
    }

    /// <summary>
    /// Clears a suspicion at once when another part of the tier has just had an answer from the server (a release
    /// notification, an answered lock check, a backplane message): waiters woken by the server must find L2 available,
    /// not wait for the next probe. Cheap when nothing is suspect.
    /// </summary>
    internal void ServerAnswered()
    {
        if (!_suspect)
        {
            return;
        }

        bool cleared;
        lock (_lock)
        {
            cleared = _suspect && (_multiplexer?.IsConnected ?? false);
            if (cleared)
            {
                _suspect = false;
            }
        }

        if (cleared)
        {
            NoteRecovery();
            Update("answered");
        }
    }

    private void NoteRecovery() => Volatile.Write(ref _recoveredAt, _time.GetTimestamp());

    /// <summary>Whether a suspicion was cleared by an answer less than <paramref name="window"/> ago.</summary>
    private bool RecoveredWithin(TimeSpan window)
    {
        long recoveredAt = Volatile.Read(ref _recoveredAt);
        return recoveredAt != long.MinValue && _time.GetElapsedTime(recoveredAt) < window;
    }

    private static bool IsTimeout(Exception exception)
    {
        for (Exception? current = exception; current is not null; current = current.InnerException)
        {
            if (current is TimeoutException)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Gets a short reason when <paramref name="exception"/> (or an inner one) is connection-level; otherwise <see langword="null"/>.</summary>
    internal static string? Classify(Exception exception)
    {
        for (Exception? current = exception; current is not null; current = current.InnerException)
        {
            switch (current)
            {
                case RedisConnectionException connection:
                    return "connection failure: " + connection.FailureType;
                case TimeoutException: // RedisTimeoutException included
                    return "timeout";
                case SocketException or IOException:
                    return "socket failure";
                case AggregateException { InnerExceptions.Count: > 0 } aggregate:
                    return Classify(aggregate.InnerExceptions[0]);
                case RedisServerException:
                    return null;
            }
        }

        return null;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
        lock (_lock)
        {
            if (_multiplexer is { } multiplexer)
            {
                multiplexer.ConnectionFailed -= OnConnectionFailed;
                multiplexer.ConnectionRestored -= OnConnectionRestored;
            }
        }
    }

    private async Task AttachAsync()
    {
        IConnectionMultiplexer multiplexer;
        try
        {
            multiplexer = await _source.GetAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Creating the multiplexer failed (bad options): every L2 call fails the same way and is logged there.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            MarkSuspect("could not create the connection: " + ex.GetType().Name);
            return;
        }

        lock (_lock)
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            _multiplexer = multiplexer;
            multiplexer.ConnectionFailed += OnConnectionFailed;
            multiplexer.ConnectionRestored += OnConnectionRestored;
        }

        Update("not connected");
        _ = WatchAsync();
    }

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        Log.ConnectionEvent(_logger, e.ConnectionType.ToString(), RedisConfigurationText.Format(e.EndPoint), "failed", e.FailureType.ToString(), e.Exception);
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            Update("connection failure: " + e.FailureType);
        }
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        Log.ConnectionEvent(_logger, e.ConnectionType.ToString(), RedisConfigurationText.Format(e.EndPoint), "restored", e.FailureType.ToString(), null);
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            lock (_lock)
            {
                _suspect = false; // a new socket that completed its handshake: the server answers
            }

            NoteRecovery();
            Update("connection failure");
        }
    }

    private void MarkSuspect(string reason)
    {
        lock (_lock)
        {
            if (!_suspect)
            {
                _suspect = true;
                _suspectReason = reason;
            }
        }

        Update(reason);
    }

    /// <summary>Recomputes availability and, if it changed, logs and raises <see cref="AvailabilityChanged"/> (outside the lock).</summary>
    private void Update(string reason)
    {
        bool changed;
        bool available;
        long downMilliseconds = 0;
        lock (_lock)
        {
            available = !_suspect && (_multiplexer?.IsConnected ?? true);
            changed = available != _available;
            if (changed)
            {
                _available = available;
                if (available)
                {
                    downMilliseconds = (long)_time.GetElapsedTime(_downSince).TotalMilliseconds;
                }
                else
                {
                    _downSince = _time.GetTimestamp();
                    reason = _suspect ? _suspectReason : reason;
                }
            }
        }

        if (!changed || Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        if (available)
        {
            Log.RedisAvailable(_logger, _source.Description, downMilliseconds);
        }
        else
        {
            Log.RedisUnavailable(_logger, _source.Description, reason);
        }

        AvailabilityChanged?.Invoke(this, EventArgs.Empty);
    }

    /// <summary>
    /// Pings the server: every second while it is believed healthy, every 250 ms while it is suspect. At most one
    /// <c>PING</c> is outstanding: an unanswered one is awaited again rather than repeated. An answer clears the
    /// suspicion; no answer within a second, or a failure, raises it.
    /// </summary>
    private async Task WatchAsync()
    {
        Task<TimeSpan>? ping = null;
        while (!_stopping.IsCancellationRequested)
        {
            bool suspect;
            IConnectionMultiplexer? multiplexer;
            lock (_lock)
            {
                suspect = _suspect;
                multiplexer = _multiplexer;
            }

            try
            {
                await Task.Delay(suspect ? ProbeInterval : HeartbeatInterval, _time, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (multiplexer is null || !multiplexer.IsConnected)
            {
                ping = null;
                continue; // the connection events report this state; reconnecting is StackExchange.Redis's job
            }

            try
            {
                ping ??= multiplexer.GetDatabase().PingAsync();
                await ping.WaitAsync(PingTimeout, _time, _stopping.Token).ConfigureAwait(false);
                ping = null;
                bool cleared;
                lock (_lock)
                {
                    cleared = _suspect;
                    _suspect = false;
                }

                if (cleared)
                {
                    NoteRecovery();
                    Update("answered");
                }
            }
            catch (TimeoutException) when (!ping!.IsCompleted)
            {
                MarkSuspect($"no reply to PING within {PingTimeout.TotalMilliseconds:0} ms"); // keep waiting for the same PING
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                _ = ping?.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                return;
            }
#pragma warning disable CA1031 // A failed PING is how an unavailable server shows: log at Debug, mark it, try again.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                ping = null;
                Log.ProbeFailed(_logger, _source.Description, (long)ProbeInterval.TotalMilliseconds, ex);
                if (!(IsTimeout(ex) && RecoveredWithin(LateTimeoutWindow)))
                {
                    MarkSuspect(Classify(ex) ?? "PING failed: " + ex.GetType().Name);
                }
            }
        }
    }
}
