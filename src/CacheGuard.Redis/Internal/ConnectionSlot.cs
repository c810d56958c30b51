using System.Net;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// One logical connection (interactive or subscriber): the current <see cref="PhysicalConnection"/>, the first
/// connect, and the background reconnect loop with capped exponential backoff.
/// </summary>
internal sealed class ConnectionSlot : IPhysicalConnectionOwner, IDisposable
{
    private readonly RedisConnection _owner;
    private readonly RedisConfiguration _configuration;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _disposed = new();
    private volatile PhysicalConnection? _current; // written under _lock
    private Task<Exception?>? _firstConnect; // guarded by _lock; completes with the failure, never faults
    private bool _reconnecting; // guarded by _lock
    private volatile Exception? _lastError;

    public ConnectionSlot(RedisConnection owner, RedisConnectionKind kind, RedisConfiguration configuration, TimeProvider time, ILogger logger)
    {
        _owner = owner;
        Kind = kind;
        _configuration = configuration;
        _time = time;
        _logger = logger;
    }

    public RedisConnectionKind Kind { get; }

    public PhysicalConnection? Current => _current;

    public bool IsConnected => _current is { IsClosed: false };

    private string EndPointName => RedisConfiguration.Format(_configuration.EndPoints[0]);

    /// <summary>Starts the first connect if nobody has, and waits for it.</summary>
    public Task<Exception?> StartAsync()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, _owner);
            return _firstConnect ??= FirstConnectAsync();
        }
    }

    /// <summary>Returns the open connection, connecting first if this is the first use; fails fast while reconnecting.</summary>
    public async ValueTask<PhysicalConnection> GetAsync(CancellationToken cancellationToken)
    {
        PhysicalConnection? current = _current;
        if (current is not null && !current.IsClosed)
        {
            return current;
        }

        Task<Exception?> first = StartAsync();
        if (!first.IsCompleted)
        {
            Exception? error = await first.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (error is not null)
            {
                throw Rewrap(error);
            }
        }

        current = _current;
        if (current is not null && !current.IsClosed)
        {
            return current;
        }

        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, _owner);
        throw NotConnected();
    }

    public RedisConnectionException NotConnected()
    {
        Exception? last = _lastError;
        return new RedisConnectionException(
            RedisConnectionFailureType.NotConnected,
            $"No connection to Redis at {EndPointName} is available; it is being re-established in the background. Last error: {last?.Message ?? "none"}",
            last);
    }

    public void OnConnectionClosed(PhysicalConnection connection, RedisConnectionException reason)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_current, connection))
            {
                return;
            }

            _current = null;
        }

        _lastError = reason;
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        Log.ConnectionLost(_logger, Kind, connection.EndPointName, reason);
        _owner.RaiseConnectionFailed(new RedisConnectionEventArgs(Kind, connection.EndPointName, reason));
        StartReconnecting();
    }

    public void OnMessage(string channel, byte[] payload) => _owner.DispatchMessage(channel, payload);

    /// <summary>Stops reconnecting and closes the connection. The token source is cancelled, not disposed: late readers of its token stay safe.</summary>
    public void Dispose()
    {
        PhysicalConnection? current;
        lock (_lock)
        {
            if (_disposed.IsCancellationRequested)
            {
                return;
            }

            _disposed.Cancel();
            current = _current;
            _current = null;
        }

        current?.Close(new RedisConnectionException(RedisConnectionFailureType.Disposed, "The Redis connection was disposed."));
    }

    private async Task<Exception?> FirstConnectAsync()
    {
        try
        {
            PhysicalConnection connection = await ConnectOnceAsync().ConfigureAwait(false);
            if (TryPublish(connection))
            {
                Log.Connected(_logger, connection.EndPointName, Kind);
                return null;
            }

            throw NotConnected();
        }
        catch (Exception ex)
        {
            _lastError = ex;
            if (_disposed.IsCancellationRequested)
            {
                return new ObjectDisposedException(nameof(RedisConnection), "The Redis connection was disposed while connecting.");
            }

            Log.ConnectFailed(_logger, Kind, EndPointName, ex);
            StartReconnecting();
            return ex;
        }
    }

    private void StartReconnecting()
    {
        lock (_lock)
        {
            if (_reconnecting || _disposed.IsCancellationRequested)
            {
                return;
            }

            _reconnecting = true;
        }

        _ = ReconnectLoopAsync();
    }

    private async Task ReconnectLoopAsync()
    {
        TimeSpan delay = _configuration.ReconnectBaseDelay;
        int attempt = 0;
        CancellationToken disposed = _disposed.Token;
        while (!disposed.IsCancellationRequested)
        {
            await Task.Delay(delay, _time, disposed).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (disposed.IsCancellationRequested)
            {
                break;
            }

            attempt++;
            try
            {
                PhysicalConnection connection = await ConnectOnceAsync().ConfigureAwait(false);
                if (TryPublish(connection))
                {
                    Log.Reconnected(_logger, Kind, connection.EndPointName, attempt);
                    _owner.RaiseConnectionRestored(new RedisConnectionEventArgs(Kind, connection.EndPointName, null));
                    return;
                }
            }
            catch (Exception ex)
            {
                _lastError = ex;
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, _configuration.ReconnectMaxDelay.Ticks));
                Log.ReconnectFailed(_logger, attempt, Kind, EndPointName, ex.Message, (long)delay.TotalMilliseconds);
            }
        }

        lock (_lock)
        {
            _reconnecting = false;
        }
    }

    /// <summary>Makes <paramref name="connection"/> current unless it already closed (then the caller keeps trying).</summary>
    private bool TryPublish(PhysicalConnection connection)
    {
        lock (_lock)
        {
            if (_disposed.IsCancellationRequested)
            {
                connection.Close(new RedisConnectionException(RedisConnectionFailureType.Disposed, "The Redis connection was disposed."));
                return false;
            }

            if (connection.IsClosed)
            {
                return false;
            }

            _current = connection;
            _reconnecting = false;
            return true;
        }
    }

    private async Task<PhysicalConnection> ConnectOnceAsync()
    {
        Exception? last = null;
        foreach (DnsEndPoint endPoint in _configuration.EndPoints)
        {
            using var timeout = new CancellationTokenSource(_configuration.ConnectTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _disposed.Token);
            try
            {
                PhysicalConnection connection = await PhysicalConnection.ConnectAsync(
                    _configuration, endPoint, Kind == RedisConnectionKind.Subscription, this, _time, _logger, linked.Token).ConfigureAwait(false);
                if (Kind == RedisConnectionKind.Subscription)
                {
                    try
                    {
                        await _owner.ResubscribeAsync(connection, linked.Token).ConfigureAwait(false);
                    }
                    catch (Exception ex)
                    {
                        connection.Close(ex);
                        throw;
                    }
                }

                return connection;
            }
            catch (OperationCanceledException ex) when (timeout.IsCancellationRequested && !_disposed.IsCancellationRequested)
            {
                last = new RedisConnectionException(
                    RedisConnectionFailureType.UnableToConnect,
                    $"Could not connect to {RedisConfiguration.Format(endPoint)} within {(long)_configuration.ConnectTimeout.TotalMilliseconds} ms (connectTimeout).",
                    ex);
            }
            catch (RedisConnectionException ex) when (ex.FailureType != RedisConnectionFailureType.AuthenticationFailure)
            {
                last = ex;
            }
        }

        throw last ?? new RedisConnectionException(RedisConnectionFailureType.UnableToConnect, "No Redis endpoint is configured.");
    }

    private static RedisConnectionException Rewrap(Exception error) => error switch
    {
        RedisConnectionException connection => new RedisConnectionException(connection.FailureType, connection.Message, connection),
        ObjectDisposedException => new RedisConnectionException(RedisConnectionFailureType.Disposed, error.Message, error),
        _ => new RedisConnectionException(RedisConnectionFailureType.UnableToConnect, error.Message, error),
    };
}
