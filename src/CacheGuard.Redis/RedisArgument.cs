using CacheGuard.Redis.Internal;

namespace CacheGuard.Redis;

/// <summary>One binary-safe argument of a <see cref="RedisCommand"/>: text (sent as UTF-8), bytes, or an integer (sent as decimal digits).</summary>
public readonly struct RedisArgument : IEquatable<RedisArgument>
{
    private readonly string? _text;
    private readonly ReadOnlyMemory<byte> _bytes;
    private readonly long _integer;
    private readonly byte _kind; // 0 bytes, 1 text, 2 integer

    private RedisArgument(string? text, ReadOnlyMemory<byte> bytes, long integer, byte kind)
    {
        _text = text;
        _bytes = bytes;
        _integer = integer;
        _kind = kind;
    }

    /// <summary>Creates a text argument, sent as UTF-8.</summary>
    /// <param name="value">The text.</param>
    /// <returns>The argument.</returns>
    public static RedisArgument FromString(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new(value, default, 0, 1);
    }

    /// <summary>Creates a binary argument; the bytes are copied when the command is built.</summary>
    /// <param name="value">The bytes.</param>
    /// <returns>The argument.</returns>
    public static RedisArgument FromBytes(ReadOnlyMemory<byte> value) => new(null, value, 0, 0);

    /// <summary>Creates an integer argument, sent as decimal digits.</summary>
    /// <param name="value">The integer.</param>
    /// <returns>The argument.</returns>
    public static RedisArgument FromInt64(long value) => new(null, default, value, 2);

    /// <summary>Converts text to an argument.</summary>
    /// <param name="value">The text.</param>
    public static implicit operator RedisArgument(string value) => FromString(value);

    /// <summary>Converts bytes to an argument.</summary>
    /// <param name="value">The bytes.</param>
    public static implicit operator RedisArgument(byte[] value) => FromBytes(value);

    /// <summary>Converts bytes to an argument.</summary>
    /// <param name="value">The bytes.</param>
    public static implicit operator RedisArgument(ReadOnlyMemory<byte> value) => FromBytes(value);

    /// <summary>Converts an integer to an argument.</summary>
    /// <param name="value">The integer.</param>
    public static implicit operator RedisArgument(long value) => FromInt64(value);

    /// <summary>Compares two arguments by content.</summary>
    /// <param name="left">The first argument.</param>
    /// <param name="right">The second argument.</param>
    /// <returns><see langword="true"/> if both encode the same kind and value.</returns>
    public static bool operator ==(RedisArgument left, RedisArgument right) => left.Equals(right);

    /// <summary>Compares two arguments by content.</summary>
    /// <param name="left">The first argument.</param>
    /// <param name="right">The second argument.</param>
    /// <returns><see langword="true"/> if they differ.</returns>
    public static bool operator !=(RedisArgument left, RedisArgument right) => !left.Equals(right);

    /// <inheritdoc />
    public bool Equals(RedisArgument other) =>
        _kind == other._kind && _integer == other._integer && string.Equals(_text, other._text, StringComparison.Ordinal) && _bytes.Span.SequenceEqual(other._bytes.Span);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is RedisArgument other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_kind, _integer, _text, _bytes.Length);

    internal void WriteTo(PooledBufferWriter writer)
    {
        switch (_kind)
        {
            case 1:
                Resp.WriteBulk(writer, _text!);
                break;
            case 2:
                Resp.WriteBulk(writer, _integer);
                break;
            default:
                Resp.WriteBulk(writer, _bytes.Span);
                break;
        }
    }
}
