using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace CacheGuard.Redis.Internal;

internal sealed partial class PhysicalConnection
{
    // A RESP2 push on a subscribed connection: ["message", channel, payload].
    private static ReadOnlySpan<byte> MessagePrefix => "*3\r\n$7\r\nmessage\r\n"u8;

    /// <summary>Sends batches while it owns writing (<see cref="Writer.Loop"/>), until the buffer is empty; then waits to be woken again.</summary>
    private async Task WriteLoopAsync()
    {
        Exception? error = null;
        bool ownsBuffers = true;
        try
        {
            while (true)
            {
                await _writeSignal.WaitAsync().ConfigureAwait(false);
                PooledBufferWriter? batch;
                lock (_lock)
                {
                    _writeSignalled = false;
                    if (_closed)
                    {
                        // A caller in the middle of its own write returns the buffers when it finishes.
                        ownsBuffers = _writer != Writer.Caller;
                        _writer = Writer.Loop;
                        break;
                    }

                    // Woken only with writing handed to the loop (or by Close, above).
                    Debug.Assert(_writer == Writer.Loop, "The writer loop was woken without owning writing.");
                    batch = SwapBuffersLocked();
                }

                while (batch is not null)
                {
                    if (batch.WrittenCount > 0)
                    {
                        await _stream.WriteAsync(batch.WrittenMemory).ConfigureAwait(false);
                    }

                    batch.Reset();
                    lock (_lock)
                    {
                        if (_closed)
                        {
                            return; // the finally below closes and returns the buffers
                        }

                        if (_outgoing.WrittenCount == 0)
                        {
                            _writer = Writer.None;
                            batch = null;
                        }
                        else
                        {
                            batch = SwapBuffersLocked();
                        }
                    }
                }
            }
        }
        catch (Exception ex)
        {
            error = ex;
        }
        finally
        {
            Close(error);
            if (ownsBuffers)
            {
                ReleaseBuffers();
            }
        }
    }

    /// <summary>Writes a lone caller's batch on its own thread; only a socket that cannot take the bytes at once makes it asynchronous.</summary>
    private void WriteDirect(PooledBufferWriter batch)
    {
        ValueTask write;
        try
        {
            write = _stream.WriteAsync(batch.WrittenMemory);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException or NotSupportedException)
        {
            EndDirectWrite(batch, ex);
            return;
        }

        if (write.IsCompletedSuccessfully)
        {
            write.GetAwaiter().GetResult();
            EndDirectWrite(batch, null);
        }
        else
        {
            _ = CompleteDirectWriteAsync(write, batch);
        }
    }

    private async Task CompleteDirectWriteAsync(ValueTask write, PooledBufferWriter batch)
    {
        Exception? error = null;
        try
        {
            await write.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            error = ex;
        }

        EndDirectWrite(batch, error);
    }

    /// <summary>Ends a caller's write: hands what others queued meanwhile to the writer loop, so a caller never writes for others.</summary>
    private void EndDirectWrite(PooledBufferWriter batch, Exception? error)
    {
        batch.Reset();
        if (error is not null)
        {
            Close(error);
        }

        bool signal = false;
        bool release = false;
        lock (_lock)
        {
            if (_closed)
            {
                release = true; // _writer stays Caller: the loop leaves the buffers to us
            }
            else if (_outgoing.WrittenCount > 0)
            {
                _writer = Writer.Loop;
                signal = SignalLocked();
            }
            else
            {
                _writer = Writer.None;
            }
        }

        if (signal)
        {
            _writeSignal.Release();
        }

        if (release)
        {
            ReleaseBuffers();
        }
    }

    private PooledBufferWriter SwapBuffersLocked()
    {
        PooledBufferWriter batch = _outgoing;
        _outgoing = _flushing;
        _flushing = batch;
        return batch;
    }

    /// <summary>Marks the writer loop as signalled; returns whether the caller must release the semaphore (after leaving the lock).</summary>
    private bool SignalLocked()
    {
        if (_writeSignalled)
        {
            return false;
        }

        _writeSignalled = true;
        return true;
    }

    /// <summary>Returns both buffers to the pool; called once, by whichever writer stops last after the connection closed.</summary>
    private void ReleaseBuffers()
    {
        lock (_lock)
        {
            _flushing.Dispose();
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
