using CacheGuard.Redis.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CacheGuard.Redis;

/// <summary>
/// A multiplexed Redis connection: one socket carries every concurrent command, pipelined automatically (commands
/// issued while a write is in flight go out together in the next write; replies are matched to callers in order).
/// Thread-safe; create one per server and share it.
/// </summary>
/// <remarks>
/// <para>The first command connects if <see cref="ConnectAsync"/> was not called. When the connection drops,
/// in-flight commands fail with <see cref="RedisConnectionException"/>, new commands fail fast while it is down, and
/// it is re-established in the background with capped exponential backoff (<see cref="RedisConfiguration.ReconnectBaseDelay"/>,
/// <see cref="RedisConfiguration.ReconnectMaxDelay"/>), repeating <c>AUTH</c>, <c>SELECT</c>, <c>CLIENT SETNAME</c>
/// and every subscription. A command without a reply within <see cref="RedisConfiguration.AsyncTimeout"/> fails with
/// <see cref="RedisTimeoutException"/>.</para>
/// <para>Subscriptions use a second, dedicated connection, opened by the first <see cref="SubscribeAsync"/>.</para>
/// </remarks>
public sealed partial class RedisConnection : IAsyncDisposable, IDisposable
{
    private static readonly RedisCommand PingCommand = new("PING");
    private readonly ConnectionSlot _interactive;
    private readonly ConnectionSlot _subscriber;
    private readonly ILogger _logger;

    /// <summary>Initializes a new instance of the <see cref="RedisConnection"/> class. Nothing connects until <see cref="ConnectAsync"/> or the first command.</summary>
    /// <param name="configuration">The configuration; copied, so later changes have no effect.</param>
    /// <param name="logger">The logger, or <see langword="null"/> for none.</param>
    /// <param name="timeProvider">The clock for timeouts, keepalive and backoff, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">A timeout or delay in <paramref name="configuration"/> is out of range.</exception>
    public RedisConnection(RedisConfiguration configuration, ILogger<RedisConnection>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        configuration.Validate();
        RedisConfiguration snapshot = configuration.Clone();
        if (snapshot.EndPoints.Count == 0)
        {
            snapshot.EndPoints.Add(new System.Net.DnsEndPoint("localhost", RedisConfiguration.DefaultPort));
        }

        _logger = (ILogger?)logger ?? NullLogger.Instance;
        TimeProvider time = timeProvider ?? TimeProvider.System;
        _interactive = new ConnectionSlot(this, RedisConnectionKind.Interactive, snapshot, time, _logger);
        _subscriber = new ConnectionSlot(this, RedisConnectionKind.Subscription, snapshot, time, _logger);
        EndPoint = RedisConfiguration.Format(snapshot.EndPoints[0]);
        AbortOnConnectFail = snapshot.AbortOnConnectFail;
    }

    /// <summary>Initializes a new instance of the <see cref="RedisConnection"/> class from a configuration string.</summary>
    /// <param name="configuration">A StackExchange.Redis-style string or a <c>redis://</c> URI; see <see cref="RedisConfiguration.Parse"/>.</param>
    /// <param name="logger">The logger, or <see langword="null"/> for none.</param>
    /// <exception cref="ArgumentException">The configuration string is invalid.</exception>
    public RedisConnection(string configuration, ILogger<RedisConnection>? logger = null)
        : this(RedisConfiguration.Parse(configuration), logger)
    {
    }

    /// <summary>Raised when an established connection is lost (before reconnecting starts). Handlers run on a background thread and must be quick.</summary>
    public event EventHandler<RedisConnectionEventArgs>? ConnectionFailed;

    /// <summary>
    /// Raised when a connection is re-established after a loss, after <c>AUTH</c>/<c>SELECT</c> and (for the
    /// subscription connection) every subscription are restored. Messages published while it was down are lost:
    /// a subscriber that caches should drop what it holds.
    /// </summary>
    public event EventHandler<RedisConnectionEventArgs>? ConnectionRestored;

    /// <summary>Gets the first configured server, as <c>host:port</c>.</summary>
    /// <value>The endpoint.</value>
    public string EndPoint { get; }

    /// <summary>Gets a value indicating whether the interactive connection is open.</summary>
    /// <value><see langword="true"/> while commands can be sent.</value>
    public bool IsConnected => _interactive.IsConnected;

    /// <summary>Gets the open interactive socket, if any (a test hook).</summary>
    internal PhysicalConnection? CurrentInteractive => _interactive.Current;

    private bool AbortOnConnectFail { get; }

    /// <summary>Opens the interactive connection now instead of on the first command.</summary>
    /// <param name="cancellationToken">Stops waiting; the connection attempt itself is bounded by <see cref="RedisConfiguration.ConnectTimeout"/>.</param>
    /// <returns>A task that completes when connected or, with <c>abortConnect=false</c>, after the first attempt whatever its outcome.</returns>
    /// <exception cref="RedisConnectionException">The first attempt failed and <see cref="RedisConfiguration.AbortOnConnectFail"/> is <see langword="true"/> (it keeps retrying in the background).</exception>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        Exception? error = await _interactive.StartAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        if (error is not null && AbortOnConnectFail)
        {
            throw error is RedisConnectionException connection
                ? new RedisConnectionException(connection.FailureType, connection.Message, connection)
                : new RedisConnectionException(RedisConnectionFailureType.UnableToConnect, error.Message, error);
        }
    }

    /// <summary>Sends any command and returns its reply. Arguments are binary-safe.</summary>
    /// <param name="command">The command, for example <c>new RedisCommand("SET", key, value, "NX", "PX", 30_000)</c>.</param>
    /// <param name="cancellationToken">Abandons the wait (the command may still run on the server).</param>
    /// <returns>The reply.</returns>
    /// <exception cref="RedisServerException">The server answered with an error (<see cref="RedisServerException.ErrorPrefix"/> tells which, for example <c>NOSCRIPT</c>).</exception>
    /// <exception cref="RedisConnectionException">The connection is down or was lost before the reply.</exception>
    /// <exception cref="RedisTimeoutException">No reply within <see cref="RedisConfiguration.AsyncTimeout"/>.</exception>
    public ValueTask<RedisResult> ExecuteAsync(RedisCommand command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        return SendAsync(new CommandOperation(command), cancellationToken);
    }

    /// <summary>Sends <c>PING</c> and measures the round trip.</summary>
    /// <param name="cancellationToken">Abandons the wait.</param>
    /// <returns>The round-trip time.</returns>
    public async ValueTask<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        await ExecuteAsync(PingCommand, cancellationToken).ConfigureAwait(false);
        return System.Diagnostics.Stopwatch.GetElapsedTime(start);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _interactive.Dispose();
        _subscriber.Dispose();
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Sends an operation on the interactive connection; completes synchronously up to the await when connected.</summary>
    internal ValueTask<T> SendAsync<T>(PendingOperation<T> operation, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        operation.RegisterCancellation(cancellationToken);
        PhysicalConnection? connection = _interactive.Current;
        if (connection is not null && connection.TryEnqueue(operation))
        {
            return operation.Task;
        }

        return SendSlowAsync(_interactive, operation, cancellationToken);
    }

    internal void RaiseConnectionFailed(RedisConnectionEventArgs args) => Raise(ConnectionFailed, nameof(ConnectionFailed), args);

    internal void RaiseConnectionRestored(RedisConnectionEventArgs args) => Raise(ConnectionRestored, nameof(ConnectionRestored), args);

    private static async ValueTask<T> SendSlowAsync<T>(ConnectionSlot slot, PendingOperation<T> operation, CancellationToken cancellationToken)
    {
        try
        {
            PhysicalConnection connection = await slot.GetAsync(cancellationToken).ConfigureAwait(false);
            if (!connection.TryEnqueue(operation))
            {
                throw slot.NotConnected();
            }
        }
        catch (Exception ex)
        {
            operation.Fail(ex); // releases its cancellation registration; nobody awaits it
            throw;
        }

        return await operation.Task.ConfigureAwait(false);
    }

    private void Raise(EventHandler<RedisConnectionEventArgs>? handlers, string name, RedisConnectionEventArgs args)
    {
        if (handlers is null)
        {
            return;
        }

        foreach (EventHandler<RedisConnectionEventArgs> handler in handlers.GetInvocationList().Cast<EventHandler<RedisConnectionEventArgs>>())
        {
            try
            {
                handler(this, args);
            }
            catch (Exception ex)
            {
                Log.EventHandlerFailed(_logger, name, ex);
            }
        }
    }
}
