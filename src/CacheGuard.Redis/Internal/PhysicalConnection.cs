using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// One socket to one server. Callers append their commands to a shared buffer and the FIFO of pending operations
/// under one short lock. A caller whose command is the only one in flight writes it itself; otherwise a writer loop
/// sends everything buffered in one write per wake-up. A reader loop matches replies to the FIFO in order. Once closed
/// it stays closed: the owning <see cref="ConnectionSlot"/> makes a new one.
/// </summary>
internal sealed partial class PhysicalConnection : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Queue<PendingOperation> _pending = new(); // guarded by _lock
    private PooledBufferWriter _outgoing = new(16 * 1024); // guarded by _lock
    private PooledBufferWriter _flushing = new(16 * 1024); // owned by whoever _writer names
    private Writer _writer; // guarded by _lock; who is sending: only one write is in flight at a time
    private bool _writeSignalled; // guarded by _lock; true while _writeSignal holds (or is about to hold) a count
    private bool _closed; // guarded by _lock
    private readonly SemaphoreSlim _writeSignal = new(0, 1);

    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private readonly IPhysicalConnectionOwner _owner;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly long _timeoutTicks;
    private readonly long _keepAliveTicks;
    private readonly int _timeoutMilliseconds;
    private ITimer? _timer;
    private long _lastActivity; // timestamp of the last command queued; read by the timer for keepalive
    private KeepAliveOperation? _keepAlive; // timer callback only
    private int _keepAlivesSent; // Interlocked; read by tests

    // Reader loop only (read by the timer without a lock: a stale read only delays a timeout by one tick).
    private volatile PendingOperation? _current;
    private int _currentReplies;
    private volatile bool _answered; // set by the reader loop on the first reply; read by Close for a hint

    private readonly bool _ssl;

    private PhysicalConnection(Socket socket, Stream stream, string endPointName, bool isSubscriber, RedisConfiguration configuration, IPhysicalConnectionOwner owner, TimeProvider time, ILogger logger)
    {
        _socket = socket;
        _stream = stream;
        EndPointName = endPointName;
        IsSubscriber = isSubscriber;
        _owner = owner;
        _time = time;
        _logger = logger;
        _ssl = configuration.Ssl;
        _timeoutMilliseconds = (int)configuration.AsyncTimeout.TotalMilliseconds;
        _timeoutTicks = (long)(configuration.AsyncTimeout.TotalSeconds * time.TimestampFrequency);
        _keepAliveTicks = (long)(configuration.KeepAlive.TotalSeconds * time.TimestampFrequency);
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
        _lastActivity = time.GetTimestamp();
    }

    /// <summary>Who owns <see cref="_flushing"/> and the stream's write side.</summary>
    private enum Writer
    {
        /// <summary>Nobody is writing: the next caller may write directly, or wake the loop.</summary>
        None,

        /// <summary>A caller is writing its batch on its own thread (nothing else was in flight).</summary>
        Caller,

        /// <summary>The writer loop owns writing until it finds the buffer empty.</summary>
        Loop,
    }

    public string EndPointName { get; }

    public bool IsSubscriber { get; }

    /// <summary>Gets how many keepalive <c>PING</c>s this connection has queued (a test hook).</summary>
    internal int KeepAlivesSent => Volatile.Read(ref _keepAlivesSent);

    public bool IsClosed
    {
        get
        {
            lock (_lock)
            {
                return _closed;
            }
        }
    }

    /// <summary>Opens the socket (and TLS), starts the loops and runs the handshake; the token bounds all of it.</summary>
    public static async Task<PhysicalConnection> ConnectAsync(
        RedisConfiguration configuration, DnsEndPoint endPoint, bool isSubscriber, IPhysicalConnectionOwner owner, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        string name = RedisConfiguration.Format(endPoint);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream? stream = null;
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            stream = new NetworkStream(socket, ownsSocket: true);
            if (configuration.Ssl)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                await ssl.AuthenticateAsClientAsync(TlsOptions(configuration, endPoint), cancellationToken).ConfigureAwait(false);
            }
        }
        catch (AuthenticationException ex)
        {
            await stream!.DisposeAsync().ConfigureAwait(false);
            throw new RedisConnectionException(
                RedisConnectionFailureType.UnableToConnect,
                $"The TLS handshake with {name} failed: {ex.Message.TrimEnd('.')}. If the server uses a private CA or a self-signed certificate, add it to TrustedCertificateAuthorities; check that sslHost names the certificate's host.",
                ex);
        }
        catch (Exception ex)
        {
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                socket.Dispose();
            }

            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw new RedisConnectionException(RedisConnectionFailureType.UnableToConnect, $"Could not connect to {name}: {ex.Message}", ex);
        }

        var connection = new PhysicalConnection(socket, stream, name, isSubscriber, configuration, owner, time, logger);
        connection.Start();
        try
        {
            await connection.HandshakeAsync(configuration, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            connection.Close(ex);
            throw;
        }

        return connection;
    }

    private static SslClientAuthenticationOptions TlsOptions(RedisConfiguration configuration, DnsEndPoint endPoint)
    {
        X509RevocationMode revocation = configuration.CheckCertificateRevocation ? X509RevocationMode.Online : X509RevocationMode.NoCheck;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = configuration.SslHost ?? endPoint.Host,
            EnabledSslProtocols = configuration.SslProtocols,
            CertificateRevocationCheckMode = revocation,
            RemoteCertificateValidationCallback = configuration.CertificateValidation,
        };
        if (configuration.TrustedCertificateAuthorities.Count > 0)
        {
            var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = revocation };
            policy.CustomTrustStore.AddRange(configuration.TrustedCertificateAuthorities);
            options.CertificateChainPolicy = policy;
        }

        return options;
    }

    /// <summary>Queues an operation, or returns <see langword="false"/> if the connection is closed.</summary>
    /// <remarks>
    /// When nothing else is in flight and nobody is writing, the caller sends its command itself (one thread hop fewer
    /// for a lone caller). Otherwise the bytes wait in <see cref="_outgoing"/> for the writer that is active, or for the
    /// writer loop, which then sends everything queued in one write: the automatic pipelining of many callers.
    /// </remarks>
    public bool TryEnqueue(PendingOperation operation)
    {
        long now = _time.GetTimestamp();
        operation.Deadline = now + _timeoutTicks;
        if (Volatile.Read(ref _lastActivity) != now)
        {
            Volatile.Write(ref _lastActivity, now);
        }

        PooledBufferWriter? batch = null;
        bool signal = false;
        lock (_lock)
        {
            if (_closed)
            {
                return false;
            }

            operation.Write(_outgoing);
            _pending.Enqueue(operation);
            if (_writer == Writer.None)
            {
                if (_pending.Count == 1)
                {
                    _writer = Writer.Caller;
                    batch = SwapBuffersLocked();
                }
                else
                {
                    _writer = Writer.Loop;
                    signal = SignalLocked();
                }
            }
        }

        if (signal)
        {
            _writeSignal.Release();
        }

        if (batch is not null)
        {
            WriteDirect(batch);
        }

        return true;
    }

    /// <summary>Closes the connection (once) and fails every pending operation with a <see cref="RedisConnectionException"/>.</summary>
    public void Close(Exception? reason)
    {
        PendingOperation[] failed;
        bool signal = false;
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            failed = [.. _pending];
            _pending.Clear();
            signal = SignalLocked();
        }

        if (signal)
        {
            _writeSignal.Release();
        }

        _timer?.Dispose();
        RedisConnectionException exception = reason as RedisConnectionException ?? new RedisConnectionException(
            reason is RedisProtocolException ? RedisConnectionFailureType.ProtocolError : RedisConnectionFailureType.ConnectionLost,
            $"The connection to {EndPointName} was lost: {reason?.Message ?? "closed by the server"}{(_answered || _ssl ? string.Empty : " The server closed it before answering anything; if it expects TLS, set ssl=true.")}",
            reason);
        // Each caller gets its own exception object: one instance rethrown on many threads would tangle its stack trace.
        _current?.Fail(exception);
        foreach (PendingOperation operation in failed)
        {
            operation.Fail(new RedisConnectionException(exception.FailureType, exception.Message, reason));
        }

        try
        {
            _socket.Dispose();
            _stream.Dispose();
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            Log.CloseFailed(_logger, EndPointName, ex);
        }

        _owner.OnConnectionClosed(this, exception);
    }

    /// <summary>Closes the connection; the writer loop releases the buffers once it has stopped.</summary>
    public void Dispose() => Close(new RedisConnectionException(RedisConnectionFailureType.Disposed, "The Redis connection was disposed."));

    private void Start()
    {
        _ = Task.Run(ReadLoopAsync);
        _ = Task.Run(WriteLoopAsync);
        long tickMilliseconds = Math.Clamp(_timeoutMilliseconds / 10, 10, 250);
        _timer = _time.CreateTimer(static state => ((PhysicalConnection)state!).OnTimer(), this, TimeSpan.FromMilliseconds(tickMilliseconds), TimeSpan.FromMilliseconds(tickMilliseconds));
    }

    private async Task HandshakeAsync(RedisConfiguration configuration, CancellationToken cancellationToken)
    {
        CommandOperation? auth = null, select = null, setName = null;
        if (configuration.Password is not null)
        {
            auth = new CommandOperation(configuration.User is null
                ? new RedisCommand("AUTH", configuration.Password)
                : new RedisCommand("AUTH", configuration.User, configuration.Password));
            Send(auth, cancellationToken);
        }

        if (configuration.DefaultDatabase != 0)
        {
            select = new CommandOperation(new RedisCommand("SELECT", configuration.DefaultDatabase));
            Send(select, cancellationToken);
        }

        if (!string.IsNullOrEmpty(configuration.ClientName))
        {
            setName = new CommandOperation(new RedisCommand("CLIENT", "SETNAME", configuration.ClientName));
            Send(setName, cancellationToken);
        }

        try
        {
            if (auth is not null)
            {
                await auth.Task.ConfigureAwait(false);
            }

            if (select is not null)
            {
                await select.Task.ConfigureAwait(false);
            }

            if (setName is not null)
            {
                await setName.Task.ConfigureAwait(false);
            }
        }
        catch (RedisServerException ex) when (ex.ErrorPrefix is "WRONGPASS" or "NOAUTH" or "NOPERM" || (auth is not null && auth.Task.IsFaulted))
        {
            string who = configuration.User is null ? string.Empty : $" as user '{configuration.User}'";
            string hint = configuration.Password is null ? " The server requires a password: set password= (and user= for an ACL user)." : string.Empty;
            throw new RedisConnectionException(RedisConnectionFailureType.AuthenticationFailure, $"Authentication to {EndPointName}{who} failed: {ex.Message}{hint}", ex);
        }
        catch (RedisServerException ex)
        {
            throw new RedisConnectionException(RedisConnectionFailureType.UnableToConnect, $"The handshake with {EndPointName} failed: {ex.Message}", ex);
        }
    }

    private void Send(CommandOperation operation, CancellationToken cancellationToken)
    {
        operation.RegisterCancellation(cancellationToken);
        if (!TryEnqueue(operation))
        {
            operation.Fail(new RedisConnectionException(RedisConnectionFailureType.ConnectionLost, $"The connection to {EndPointName} closed during the handshake."));
        }
    }

    private void OnTimer()
    {
        long now = _time.GetTimestamp();
        List<PendingOperation>? expired = null;
        int waiting;
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }

            waiting = _pending.Count;
            foreach (PendingOperation operation in _pending)
            {
                if (operation.Deadline > now)
                {
                    break;
                }

                if (!operation.IsCompleted)
                {
                    (expired ??= []).Add(operation);
                }
            }
        }

        PendingOperation? current = _current;
        if (current is not null && current.Deadline <= now && !current.IsCompleted)
        {
            (expired ??= []).Add(current);
        }

        if (expired is not null)
        {
            string message = $"No reply from {EndPointName} within {_timeoutMilliseconds} ms (asyncTimeout); {waiting} commands were waiting on the connection.";
            foreach (PendingOperation operation in expired)
            {
                operation.Fail(new RedisTimeoutException(message));
            }
        }

        if (_keepAliveTicks > 0 && now - Volatile.Read(ref _lastActivity) >= _keepAliveTicks && (_keepAlive is null || _keepAlive.IsCompleted))
        {
            _keepAlive = new KeepAliveOperation(this);
            if (TryEnqueue(_keepAlive))
            {
                Interlocked.Increment(ref _keepAlivesSent);
            }
        }
    }
}
