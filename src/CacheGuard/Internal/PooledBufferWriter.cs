using System.Buffers;

namespace CacheGuard.Internal;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over one array rented from <see cref="ArrayPool{T}.Shared"/>, grown by doubling: for
/// envelopes on their way to and from L2, and (in CacheGuard.Redis) for commands on their way to the socket.
/// </summary>
/// <remarks>Not thread-safe: its owner serializes access.</remarks>
internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private const int MinimumSize = 256;

    // A buffer that grew past this (a 16 MB value) goes back to the pool on Reset instead of being kept.
    private const int RetainLimit = 1024 * 1024;
    private byte[] _buffer;
    private int _written;

    public PooledBufferWriter(int initialSize = MinimumSize) => _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initialSize, MinimumSize));

    public int WrittenCount => _written;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    /// <summary>Gets the written bytes for in-place patching (for example a length reserved before the payload was known).</summary>
    public Span<byte> WrittenSpanForUpdate => _buffer.AsSpan(0, _written);

    public void Advance(int count)
    {
        if (count < 0 || _written + count > _buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "Cannot advance past the end of the buffer.");
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

    public byte[] ToArray() => WrittenSpan.ToArray();

    public void Write(ReadOnlySpan<byte> source)
    {
        Ensure(source.Length);
        source.CopyTo(_buffer.AsSpan(_written));
        _written += source.Length;
    }

    /// <summary>Empties the buffer for reuse, handing an oversized array back to the pool.</summary>
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
        byte[] buffer = _buffer;
        _buffer = [];
        _written = 0;
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Ensure(int sizeHint)
    {
        int needed = Math.Max(sizeHint, 1);
        if (_buffer.Length - _written >= needed)
        {
            return;
        }

        int size = Math.Max(_buffer.Length * 2, _written + needed);
        byte[] larger = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, _written).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }
}
