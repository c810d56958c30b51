using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace CacheGuard.Redis.Internal;

/// <summary>RESP2 encoding and decoding. Encoders append to a <see cref="PooledBufferWriter"/>; decoders read a <see cref="SequenceReader{T}"/>.</summary>
internal static class Resp
{
    public const byte SimpleString = (byte)'+';
    public const byte Error = (byte)'-';
    public const byte Integer = (byte)':';
    public const byte BulkString = (byte)'$';
    public const byte Array = (byte)'*';

    // Longest RESP2 header: a type byte, a 20-digit signed long, CRLF.
    private const int MaxHeader = 24;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    // ---- writing ----

    public static void WriteArrayHeader(PooledBufferWriter writer, int count) => WriteHeader(writer, Array, count);

    public static void WriteBulk(PooledBufferWriter writer, ReadOnlySpan<byte> value)
    {
        WriteHeader(writer, BulkString, value.Length);
        Span<byte> span = writer.GetSpan(value.Length + 2);
        value.CopyTo(span);
        span[value.Length] = (byte)'\r';
        span[value.Length + 1] = (byte)'\n';
        writer.Advance(value.Length + 2);
    }

    public static void WriteBulk(PooledBufferWriter writer, in ReadOnlySequence<byte> value)
    {
        if (value.IsSingleSegment)
        {
            WriteBulk(writer, value.FirstSpan);
            return;
        }

        int length = checked((int)value.Length);
        WriteHeader(writer, BulkString, length);
        foreach (ReadOnlyMemory<byte> segment in value)
        {
            writer.Write(segment.Span);
        }

        writer.Write("\r\n"u8);
    }

    /// <summary>Writes <paramref name="prefix"/> followed by the UTF-8 bytes of <paramref name="value"/> as one bulk string.</summary>
    public static void WriteBulk(PooledBufferWriter writer, ReadOnlySpan<byte> prefix, string value)
    {
        int length = prefix.Length + Utf8.GetByteCount(value);
        WriteHeader(writer, BulkString, length);
        Span<byte> span = writer.GetSpan(length + 2);
        prefix.CopyTo(span);
        int written = Utf8.GetBytes(value, span[prefix.Length..]);
        span[prefix.Length + written] = (byte)'\r';
        span[prefix.Length + written + 1] = (byte)'\n';
        writer.Advance(prefix.Length + written + 2);
    }

    public static void WriteBulk(PooledBufferWriter writer, string value) => WriteBulk(writer, default, value);

    public static void WriteBulk(PooledBufferWriter writer, long value)
    {
        Span<byte> digits = stackalloc byte[20];
        Utf8Formatter.TryFormat(value, digits, out int length);
        WriteBulk(writer, digits[..length]);
    }

    public static int Utf8Length(string value) => Utf8.GetByteCount(value);

    public static byte[] Utf8Bytes(string value) => Utf8.GetBytes(value);

    public static string Utf8String(ReadOnlySpan<byte> value) => Utf8.GetString(value);

    private static void WriteHeader(PooledBufferWriter writer, byte type, long value)
    {
        Span<byte> span = writer.GetSpan(MaxHeader);
        span[0] = type;
        Utf8Formatter.TryFormat(value, span[1..], out int digits);
        span[1 + digits] = (byte)'\r';
        span[2 + digits] = (byte)'\n';
        writer.Advance(digits + 3);
    }

    // ---- reading ----

    /// <summary>Moves past one complete RESP value, or returns <see langword="false"/> (position undefined) when more bytes are needed.</summary>
    /// <exception cref="RedisProtocolException">The bytes are not RESP2.</exception>
    public static bool TrySkip(ref SequenceReader<byte> reader)
    {
        if (!reader.TryRead(out byte type))
        {
            return false;
        }

        switch (type)
        {
            case SimpleString:
            case Error:
            case Integer:
                return reader.TryAdvanceTo((byte)'\n', advancePastDelimiter: true);
            case BulkString:
            {
                if (!TryReadLineInt64(ref reader, out long length))
                {
                    return false;
                }

                if (length < 0)
                {
                    return true;
                }

                if (reader.Remaining < length + 2)
                {
                    return false;
                }

                reader.Advance(length + 2);
                return true;
            }

            case Array:
            {
                if (!TryReadLineInt64(ref reader, out long count))
                {
                    return false;
                }

                for (long i = 0; i < count; i++)
                {
                    if (!TrySkip(ref reader))
                    {
                        return false;
                    }
                }

                return true;
            }

            default:
                throw new RedisProtocolException($"Unexpected RESP type byte 0x{type:X2}.");
        }
    }

    /// <summary>Reads a CRLF-terminated decimal integer (the part after a type byte).</summary>
    public static bool TryReadLineInt64(ref SequenceReader<byte> reader, out long value)
    {
        if (!reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
        {
            value = 0;
            return false;
        }

        value = ParseInt64(line);
        return true;
    }

    /// <summary>Reads the type byte of a complete value.</summary>
    public static byte ReadType(ref SequenceReader<byte> reader)
    {
        reader.TryRead(out byte type);
        return type;
    }

    /// <summary>Reads the rest of a complete line (after its type byte) as text.</summary>
    public static string ReadLineString(ref SequenceReader<byte> reader)
    {
        reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n');
        ReadOnlySequence<byte> text = line.Slice(0, Math.Max(0, line.Length - 1));
        return text.IsSingleSegment ? Utf8String(text.FirstSpan) : Utf8String(text.ToArray());
    }

    public static long ReadLineInt64(ref SequenceReader<byte> reader)
    {
        TryReadLineInt64(ref reader, out long value);
        return value;
    }

    /// <summary>Reads a complete bulk string after its type byte; <see langword="false"/> for the null bulk string.</summary>
    public static bool ReadBulk(ref SequenceReader<byte> reader, out ReadOnlySequence<byte> payload)
    {
        long length = ReadLineInt64(ref reader);
        if (length < 0)
        {
            payload = default;
            return false;
        }

        payload = reader.UnreadSequence.Slice(0, length);
        reader.Advance(length + 2);
        return true;
    }

    /// <summary>Parses the digits of a line that ends with CR (the LF already consumed).</summary>
    public static long ParseInt64(in ReadOnlySequence<byte> line)
    {
        ReadOnlySequence<byte> digits = line.Length > 0 ? line.Slice(0, line.Length - 1) : line;
        Span<byte> scratch = stackalloc byte[MaxHeader];
        scoped ReadOnlySpan<byte> span;
        if (digits.IsSingleSegment)
        {
            span = digits.FirstSpan;
        }
        else if (digits.Length <= MaxHeader)
        {
            digits.CopyTo(scratch);
            span = scratch[..(int)digits.Length];
        }
        else
        {
            throw new RedisProtocolException("A RESP integer is too long.");
        }

        if (!Utf8Parser.TryParse(span, out long value, out int consumed) || consumed != span.Length)
        {
            throw new RedisProtocolException("A RESP integer is not a number.");
        }

        return value;
    }

    /// <summary>Parses a bulk payload written as a decimal integer (how the cache stores its metadata).</summary>
    public static bool TryParseInt64(in ReadOnlySequence<byte> payload, out long value)
    {
        Span<byte> scratch = stackalloc byte[MaxHeader];
        scoped ReadOnlySpan<byte> span;
        if (payload.IsSingleSegment)
        {
            span = payload.FirstSpan;
        }
        else if (payload.Length <= MaxHeader)
        {
            payload.CopyTo(scratch);
            span = scratch[..(int)payload.Length];
        }
        else
        {
            value = 0;
            return false;
        }

        return Utf8Parser.TryParse(span, out value, out int consumed) && consumed == span.Length;
    }
}
