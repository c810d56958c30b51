using System.Buffers;
using System.Globalization;
using CacheGuard.Redis.Internal;

namespace CacheGuard.Redis;

/// <summary>A reply to a command sent with <see cref="RedisConnection.ExecuteAsync(RedisCommand, CancellationToken)"/>.</summary>
public sealed class RedisResult
{
    private static readonly RedisResult NullResult = new(RedisResultType.Null, null, 0, []);
    private readonly byte[]? _bytes;
    private readonly long _integer;
    private readonly RedisResult[] _elements;

    private RedisResult(RedisResultType type, byte[]? bytes, long integer, RedisResult[] elements)
    {
        Type = type;
        _bytes = bytes;
        _integer = integer;
        _elements = elements;
    }

    /// <summary>Gets the RESP type of the reply.</summary>
    /// <value>The reply type.</value>
    public RedisResultType Type { get; }

    /// <summary>Gets a value indicating whether the reply is the null bulk string or null array.</summary>
    /// <value><see langword="true"/> for a null reply.</value>
    public bool IsNull => Type == RedisResultType.Null;

    /// <summary>Gets the elements of an array reply.</summary>
    /// <value>The elements in order; empty for a reply that is not an array.</value>
    public IReadOnlyList<RedisResult> Elements => _elements;

    /// <summary>Gets the bytes of a bulk, status or error reply.</summary>
    /// <value>The payload; empty for integers, arrays and null.</value>
    public ReadOnlyMemory<byte> Memory => _bytes;

    /// <summary>Gets the reply as a 64-bit integer.</summary>
    /// <returns>The integer, or the bulk or status text parsed as an integer.</returns>
    /// <exception cref="InvalidCastException">The reply is not an integer.</exception>
    public long ToInt64()
    {
        if (Type == RedisResultType.Integer)
        {
            return _integer;
        }

        if (_bytes is not null && Resp.TryParseInt64(new ReadOnlySequence<byte>(_bytes), out long value))
        {
            return value;
        }

        throw new InvalidCastException($"A {Type} reply is not an integer.");
    }

    /// <summary>Gets the reply as text.</summary>
    /// <returns>The UTF-8 decoded payload, the integer in invariant digits, or <see langword="null"/> for null and arrays.</returns>
    public string? ToText() => Type switch
    {
        RedisResultType.Integer => _integer.ToString(CultureInfo.InvariantCulture),
        RedisResultType.Null or RedisResultType.Array => null,
        _ => Resp.Utf8String(_bytes),
    };

    /// <summary>Gets a copy of the payload.</summary>
    /// <returns>A new array with the bulk, status or error bytes, or <see langword="null"/> for null, integers and arrays.</returns>
    public byte[]? ToArray() => Type is RedisResultType.Null or RedisResultType.Integer or RedisResultType.Array ? null : (byte[]?)_bytes?.Clone();

    /// <inheritdoc />
    public override string ToString() => Type switch
    {
        RedisResultType.Array => $"Array[{_elements.Length}]",
        RedisResultType.Null => "(nil)",
        _ => $"{Type}: {ToText()}",
    };

    /// <summary>Parses one complete value.</summary>
    internal static RedisResult Parse(ref SequenceReader<byte> reader)
    {
        byte type = Resp.ReadType(ref reader);
        switch (type)
        {
            case Resp.SimpleString:
            case Resp.Error:
            {
                reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n');
                byte[] text = line.Slice(0, Math.Max(0, line.Length - 1)).ToArray();
                return new RedisResult(type == Resp.Error ? RedisResultType.Error : RedisResultType.SimpleString, text, 0, []);
            }

            case Resp.Integer:
                return new RedisResult(RedisResultType.Integer, null, Resp.ReadLineInt64(ref reader), []);
            case Resp.BulkString:
                return Resp.ReadBulk(ref reader, out ReadOnlySequence<byte> payload)
                    ? new RedisResult(RedisResultType.BulkString, payload.ToArray(), 0, [])
                    : NullResult;
            case Resp.Array:
            {
                long count = Resp.ReadLineInt64(ref reader);
                if (count < 0)
                {
                    return NullResult;
                }

                var elements = new RedisResult[count];
                for (int i = 0; i < elements.Length; i++)
                {
                    elements[i] = Parse(ref reader);
                }

                return new RedisResult(RedisResultType.Array, null, 0, elements);
            }

            default:
                throw new RedisProtocolException($"Unexpected RESP type byte 0x{type:X2}.");
        }
    }
}
