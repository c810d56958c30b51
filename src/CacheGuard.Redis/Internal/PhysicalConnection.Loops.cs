using System.Buffers;
using System.IO.Pipelines;

namespace CacheGuard.Redis.Internal;

internal sealed partial class PhysicalConnection
{
    // A RESP2 push on a subscribed connection: ["message", channel, payload].
    private static ReadOnlySpan<byte> MessagePrefix => "*3\r\n$7\r\nmessage\r\n"u8;

    private async Task WriteLoopAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                await _writeSignal.WaitAsync().ConfigureAwait(false);
                PooledBufferWriter batch;
                lock (_lock)
                {
                    if (_closed)
                    {
                        break;
                    }

                    batch = _outgoing;
                    _outgoing = _flushing;
                    _flushing = batch;
                    _writeSignalled = false;
                }

                if (batch.WrittenCount > 0)
                {
                    await _stream.WriteAsync(batch.WrittenMemory).ConfigureAwait(false);
                    Volatile.Write(ref _lastWriteTimestamp, _time.GetTimestamp());
                }

                batch.Reset();
            }
        }
        catch (Exception ex)
        {
            error = ex;
        }

        Close(error);
        _flushing.Dispose();
        lock (_lock)
        {
            _outgoing.Dispose();
        }
    }

    private async Task ReadLoopAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                ReadResult result = await _reader.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                SequencePosition consumed = ProcessReplies(buffer);
                _reader.AdvanceTo(consumed, buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            error = ex;
        }

        Close(error ?? new IOException("The server closed the connection."));
        await _reader.CompleteAsync().ConfigureAwait(false);
    }

    private SequencePosition ProcessReplies(in ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (true)
        {
            SequenceReader<byte> probe = reader;
            if (!Resp.TrySkip(ref probe))
            {
                return reader.Position;
            }

            if (!_answered)
            {
                _answered = true;
            }

            Dispatch(buffer.Slice(reader.Position, probe.Position));
            reader = probe;
        }
    }

    private void Dispatch(in ReadOnlySequence<byte> frame)
    {
        if (IsSubscriber && TryDispatchMessage(frame))
        {
            return;
        }

        PendingOperation? operation = _current;
        int index;
        if (operation is null)
        {
            lock (_lock)
            {
                _pending.TryDequeue(out operation);
            }

            if (operation is null)
            {
                throw new RedisProtocolException("The server sent a reply that no command was waiting for.");
            }

            index = 0;
            if (operation.ReplyCount > 1)
            {
                _currentReplies = 1;
                _current = operation;
            }
        }
        else
        {
            index = _currentReplies++;
            if (_currentReplies == operation.ReplyCount)
            {
                _current = null;
            }
        }

        var reader = new SequenceReader<byte>(frame);
        try
        {
            operation.OnReply(ref reader, index);
        }
        catch (Exception ex) when (ex is not RedisProtocolException)
        {
            Log.ReplyHandlerFailed(_logger, EndPointName, ex);
            operation.Fail(ex);
        }
    }

    private bool TryDispatchMessage(in ReadOnlySequence<byte> frame)
    {
        Span<byte> head = stackalloc byte[MessagePrefix.Length];
        if (frame.Length < head.Length)
        {
            return false;
        }

        frame.Slice(0, head.Length).CopyTo(head);
        if (!head.SequenceEqual(MessagePrefix))
        {
            return false;
        }

        var reader = new SequenceReader<byte>(frame.Slice(head.Length));
        reader.Advance(1);
        Resp.ReadBulk(ref reader, out ReadOnlySequence<byte> channel);
        reader.Advance(1);
        Resp.ReadBulk(ref reader, out ReadOnlySequence<byte> payload);
        string channelName = channel.IsSingleSegment ? Resp.Utf8String(channel.FirstSpan) : Resp.Utf8String(channel.ToArray());
        _owner.OnMessage(channelName, payload.ToArray());
        return true;
    }
}
