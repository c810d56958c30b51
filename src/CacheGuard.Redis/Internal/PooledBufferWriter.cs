using System.Buffers;

namespace CacheGuard.Redis.Internal;

/// <summary>An <see cref="IBufferWriter{T}"/> over one array rented from <see cref="ArrayPool{T}.Shared"/>, grown by doubling.</summary>
/// <remarks>Not thread-safe: the owner serializes access (the connection's lock or a single task).</remarks>
internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    // Buffers that grew past this size (a 16 MB value) go back to the pool after each flush instead of being kept.
    private const int RetainLimit = 1024 * 1024;
    private byte[] _buffer;
    private int _written;

    public PooledBufferWriter(int initialCapacity = 4096) => _buffer = ArrayPool<byte>.Shared.Rent(initialCapacity);

    public int WrittenCount => _written;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_written + count > _buffer.Length)
        {
            throw new InvalidOperationException("Advanced past the end of the buffer.");
        }

        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    public void Write(ReadOnlySpan<byte> source)
    {
        Ensure(source.Length);
        source.CopyTo(_buffer.AsSpan(_written));
        _written += source.Length;
    }

    /// <summary>Empties the buffer, handing an oversized array back to the pool.</summary>
    public void Reset()
    {
        _written = 0;
        if (_buffer.Length > RetainLimit)
        {
            byte[] old = _buffer;
            _buffer = ArrayPool<byte>.Shared.Rent(4096);
            ArrayPool<byte>.Shared.Return(old);
        }
    }

    public void Dispose()
    {
        byte[] old = _buffer;
        _buffer = [];
        _written = 0;
        if (old.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(old);
        }
    }

    private void Ensure(int sizeHint)
    {
        if (sizeHint < 1)
        {
            sizeHint = 1;
        }

        if (_buffer.Length - _written >= sizeHint)
        {
            return;
        }

        int needed = checked(_written + sizeHint);
        int size = Math.Max(needed, Math.Max(_buffer.Length * 2, 256));
        byte[] next = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, _written).CopyTo(next);
        byte[] old = _buffer;
        _buffer = next;
        if (old.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(old);
        }
    }
}
