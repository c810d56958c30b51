using System.Buffers;
using System.Threading.Tasks.Sources;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// One or more commands written together and the replies they expect. The reader loop hands it its replies in order;
/// whichever comes first of the last reply, the deadline, cancellation or connection loss completes it.
/// </summary>
internal abstract class PendingOperation
{
    private int _completed; // 0 waiting, 1 completed; changed once, by Interlocked
    private CancellationTokenRegistration _registration;

    /// <summary>Gets or sets the <see cref="TimeProvider.GetTimestamp"/> after which the operation times out; set when enqueued.</summary>
    public long Deadline { get; set; }

    /// <summary>Gets the number of replies the operation consumes.</summary>
    public virtual int ReplyCount => 1;

    public bool IsCompleted => Volatile.Read(ref _completed) != 0;

    /// <summary>Appends the command bytes. Called under the connection's lock: must not throw or block.</summary>
    public abstract void Write(PooledBufferWriter writer);

    /// <summary>Handles reply <paramref name="index"/> of <see cref="ReplyCount"/>; the reader holds exactly one complete value.</summary>
    /// <remarks>Called for every reply, even after the operation timed out or was cancelled, so pooled state can be released.</remarks>
    public abstract void OnReply(ref SequenceReader<byte> reader, int index);

    public void Fail(Exception exception)
    {
        if (TryMarkCompleted())
        {
            SetException(exception);
        }
    }

    public void RegisterCancellation(CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(
                static (state, token) => ((PendingOperation)state!).Fail(new OperationCanceledException(token)),
                this);
        }
    }

    protected bool TryMarkCompleted()
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0)
        {
            return false;
        }

        _registration.Unregister();
        return true;
    }

    protected abstract void SetException(Exception exception);

    /// <summary>Reads an error reply (the reader positioned at its type byte) into an exception.</summary>
    protected static RedisServerException ReadError(ref SequenceReader<byte> reader)
    {
        reader.Advance(1);
        return new RedisServerException(Resp.ReadLineString(ref reader));
    }

    protected static bool IsError(ref SequenceReader<byte> reader) => reader.TryPeek(out byte type) && type == Resp.Error;
}

/// <summary>An operation whose caller awaits a <typeparamref name="T"/>. Not pooled: one allocation per operation.</summary>
internal abstract class PendingOperation<T> : PendingOperation, IValueTaskSource<T>
{
    private ManualResetValueTaskSourceCore<T> _core = new() { RunContinuationsAsynchronously = true };

    public ValueTask<T> Task => new(this, _core.Version);

    T IValueTaskSource<T>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<T>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<T>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    protected void Succeed(T result)
    {
        if (TryMarkCompleted())
        {
            _core.SetResult(result);
        }
        else
        {
            Discard(result);
        }
    }

    /// <summary>Releases a result nobody will read (the operation had already failed).</summary>
    protected virtual void Discard(T result)
    {
    }

    protected override void SetException(Exception exception) => _core.SetException(exception);
}

/// <summary>A generic command: the reply is parsed into a <see cref="RedisResult"/>; an error reply throws <see cref="RedisServerException"/>.</summary>
internal sealed class CommandOperation : PendingOperation<RedisResult>
{
    private readonly RedisCommand _command;

    public CommandOperation(RedisCommand command) => _command = command;

    public override void Write(PooledBufferWriter writer) => writer.Write(_command.Encoded);

    public override void OnReply(ref SequenceReader<byte> reader, int index)
    {
        if (IsCompleted)
        {
            return;
        }

        if (IsError(ref reader))
        {
            Fail(ReadError(ref reader));
            return;
        }

        Succeed(RedisResult.Parse(ref reader));
    }
}

/// <summary>The idle-connection <c>PING</c>. A timeout closes the connection: a server that does not answer a ping is gone.</summary>
internal sealed class KeepAliveOperation : PendingOperation
{
    private static readonly RedisCommand Ping = new("PING");
    private readonly PhysicalConnection _connection;

    public KeepAliveOperation(PhysicalConnection connection) => _connection = connection;

    public override void Write(PooledBufferWriter writer) => writer.Write(Ping.Encoded);

    public override void OnReply(ref SequenceReader<byte> reader, int index) => TryMarkCompleted();

    protected override void SetException(Exception exception)
    {
        if (exception is RedisTimeoutException)
        {
            _connection.Close(new RedisConnectionException(
                RedisConnectionFailureType.ConnectionLost,
                $"The keepalive PING to {_connection.EndPointName} got no reply in time; the connection is closed and will be re-established.",
                exception));
        }
    }
}
