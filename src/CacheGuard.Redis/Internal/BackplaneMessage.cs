using System.Buffers;
using System.Text;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// The backplane's wire format, version 1: a batch of invalidations from one sender.
/// <code>
/// byte    version (1)
/// varint  sender length, then the sender's instance id (UTF-8)
/// varint  entry count
/// entry*: byte kind (1 key, 2 tag, 3 clear), varint + UTF-8 cache name, and for kinds 1 and 2 varint + UTF-8 value
/// </code>
/// A message is at most <see cref="MaxBytes"/> long; the reader rejects anything that does not parse exactly.
/// </summary>
internal static class BackplaneMessage
{
    public const byte Version = 1;
    public const int MaxBytes = 64 * 1024;

    public const byte KindKey = 1;
    public const byte KindTag = 2;
    public const byte KindClear = 3;

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Gets the encoded size of one entry.</summary>
    public static int EntrySize(in CacheInvalidation invalidation)
    {
        int size = 1 + StringSize(invalidation.CacheName);
        if (Value(invalidation) is { } value)
        {
            size += StringSize(value);
        }

        return size;
    }

    /// <summary>Gets the encoded size of the header, assuming the largest entry-count prefix.</summary>
    public static int HeaderSize(string sender) => 1 + StringSize(sender) + 5;

    /// <summary>Writes one complete message.</summary>
    public static byte[] Encode(string sender, IReadOnlyList<CacheInvalidation> entries)
    {
        var writer = new ArrayBufferWriter<byte>(HeaderSize(sender) + (entries.Count * 32));
        writer.GetSpan(1)[0] = Version;
        writer.Advance(1);
        WriteString(writer, sender);
        WriteVarint(writer, (uint)entries.Count);
        foreach (CacheInvalidation entry in entries)
        {
            writer.GetSpan(1)[0] = Kind(entry);
            writer.Advance(1);
            WriteString(writer, entry.CacheName);
            if (Value(entry) is { } value)
            {
                WriteString(writer, value);
            }
        }

        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Parses a message completely, or reports why it cannot; nothing is delivered from a bad message.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> payload, out string sender, List<CacheInvalidation> entries, out string? error)
    {
        sender = string.Empty;
        entries.Clear();
        if (payload.Length > MaxBytes)
        {
            error = $"larger than {MaxBytes} bytes";
            return false;
        }

        if (payload.IsEmpty || payload[0] != Version)
        {
            error = payload.IsEmpty ? "empty" : $"unknown version {payload[0]}";
            return false;
        }

        int position = 1;
        if (!TryReadString(payload, ref position, out string? from) || from.Length == 0)
        {
            error = "bad sender";
            return false;
        }

        if (!TryReadVarint(payload, ref position, out uint count) || count > (uint)(payload.Length - position))
        {
            error = "bad entry count"; // every entry takes at least one byte
            return false;
        }

        for (uint i = 0; i < count; i++)
        {
            if (position >= payload.Length)
            {
                error = "truncated";
                return false;
            }

            byte kind = payload[position++];
            if (kind is not (KindKey or KindTag or KindClear) || !TryReadString(payload, ref position, out string? cacheName))
            {
                error = kind is KindKey or KindTag or KindClear ? "bad cache name" : $"unknown entry kind {kind}";
                return false;
            }

            string? value = null;
            if (kind != KindClear && !TryReadString(payload, ref position, out value))
            {
                error = "bad value";
                return false;
            }

            entries.Add(kind switch
            {
                KindKey => new CacheInvalidation(cacheName, value, null),
                KindTag => new CacheInvalidation(cacheName, null, value),
                _ => new CacheInvalidation(cacheName, null, null),
            });
        }

        if (position != payload.Length)
        {
            error = "trailing bytes";
            return false;
        }

        sender = from;
        error = null;
        return true;
    }

    /// <summary>An entry with neither key nor tag means "drop everything of this cache".</summary>
    public static bool IsClear(in CacheInvalidation invalidation) => invalidation.Key is null && invalidation.Tag is null;

    private static byte Kind(in CacheInvalidation invalidation) =>
        invalidation.Key is not null ? KindKey : invalidation.Tag is not null ? KindTag : KindClear;

    private static string? Value(in CacheInvalidation invalidation) => invalidation.Key ?? invalidation.Tag;

    private static int StringSize(string value)
    {
        int bytes = Strict.GetByteCount(value);
        return VarintSize((uint)bytes) + bytes;
    }

    private static int VarintSize(uint value)
    {
        int size = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            size++;
        }

        return size;
    }

    private static void WriteVarint(ArrayBufferWriter<byte> writer, uint value)
    {
        Span<byte> span = writer.GetSpan(5);
        int i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        writer.Advance(i);
    }

    private static void WriteString(ArrayBufferWriter<byte> writer, string value)
    {
        int length = Strict.GetByteCount(value);
        WriteVarint(writer, (uint)length);
        int written = Strict.GetBytes(value, writer.GetSpan(length));
        writer.Advance(written);
    }

    private static bool TryReadVarint(ReadOnlySpan<byte> payload, ref int position, out uint value)
    {
        value = 0;
        for (int shift = 0; shift < 35; shift += 7)
        {
            if (position >= payload.Length)
            {
                return false;
            }

            byte b = payload[position++];
            value |= (uint)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return shift < 28 || b < 0x10; // the fifth byte may carry only the top 4 bits
            }
        }

        return false;
    }

    private static bool TryReadString(ReadOnlySpan<byte> payload, ref int position, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        value = null;
        if (!TryReadVarint(payload, ref position, out uint length) || length > (uint)(payload.Length - position))
        {
            return false;
        }

        try
        {
            value = Strict.GetString(payload.Slice(position, (int)length));
        }
        catch (DecoderFallbackException)
        {
            return false; // not UTF-8: the whole message is rejected
        }

        position += (int)length;
        return true;
    }
}
