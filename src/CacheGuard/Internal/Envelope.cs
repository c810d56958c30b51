using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Caching.Hybrid;

namespace CacheGuard.Internal;

/// <summary>
/// The versioned wrapper around every value CacheGuard writes to L2. Layout (little endian):
/// <code>
/// offset size field
///  0     2    magic "CG"
///  2     1    format version (1); a reader rejects versions it does not know
///  3     1    flags: bit 0 = "not found" (no payload); bit 1 = removal mark (no payload); other bits reserved
///  4     2    header length H (48 in v1; later additions append fixed fields, which v1 readers skip)
///  6     2    tag count
///  8     8    created, UTC ticks (tag invalidation compares it with a tag's removal time)
/// 16     8    logical expiry, UTC ticks (fail-safe keeps the entry physically longer than this)
/// 24     8    load duration, ticks (the "delta" of probabilistic early refresh)
/// 32     8    type tag: 64-bit FNV-1a of the value type's name
/// 40     4    payload length
/// 44     4    reserved, 0
///  H     ...  tags: for each, a 2-byte UTF-8 length and the bytes
///  ...   ...  payload, serialized by the type's IHybridCacheSerializer
/// </code>
/// The header carries what later features need (logical expiry, creation time, load duration, tags), so adding them
/// needs no format break.
/// </summary>
internal static class Envelope
{
    public const int HeaderSize = 48;
    private const byte Version = 1;
    private const byte FlagNotFound = 1;
    private const byte FlagRemoved = 2;

    public static void Write<T>(PooledBufferWriter writer, in EnvelopeHeader header, T value, IHybridCacheSerializer<T>? serializer, IReadOnlyList<string>? tags = null)
    {
        Span<byte> head = writer.GetSpan(HeaderSize)[..HeaderSize];
        head.Clear();
        head[0] = (byte)'C';
        head[1] = (byte)'G';
        head[2] = Version;
        head[3] = (byte)((header.NotFound ? FlagNotFound : 0) | (header.Removed ? FlagRemoved : 0));
        BinaryPrimitives.WriteUInt16LittleEndian(head[4..], HeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(head[6..], (ushort)(tags?.Count ?? 0));
        BinaryPrimitives.WriteInt64LittleEndian(head[8..], header.CreatedTicks);
        BinaryPrimitives.WriteInt64LittleEndian(head[16..], header.ExpiresTicks);
        BinaryPrimitives.WriteInt64LittleEndian(head[24..], header.LoadDurationTicks);
        BinaryPrimitives.WriteUInt64LittleEndian(head[32..], header.TypeTag);
        writer.Advance(HeaderSize);

        if (tags is not null)
        {
            foreach (string tag in tags)
            {
                int length = Encoding.UTF8.GetByteCount(tag);
                Span<byte> span = writer.GetSpan(2 + length);
                BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)length);
                Encoding.UTF8.GetBytes(tag, span[2..]);
                writer.Advance(2 + length);
            }
        }

        int payloadStart = writer.WrittenCount;
        if (!header.NotFound && !header.Removed)
        {
            serializer!.Serialize(value, writer);
        }

        int payloadLength = writer.WrittenCount - payloadStart;
        BinaryPrimitives.WriteInt32LittleEndian(writer.WrittenSpanForUpdate[40..], payloadLength);
    }

    /// <summary>
    /// Whether a header's times could have been written by a cache with valid options: created no later than it expires,
    /// and expiring no further out than the longest lifetime with full jitter plus the longest fail-safe window.
    /// </summary>
    public static bool IsPlausible(in EnvelopeHeader header, long nowTicks)
    {
        long longest = CoalescingCacheOptionsValidator.MaxLifetime.Ticks * 3;
        return header.CreatedTicks > 0
            && header.ExpiresTicks >= header.CreatedTicks
            && header.LoadDurationTicks >= 0
            && header.ExpiresTicks - Math.Max(nowTicks, header.CreatedTicks) <= longest;
    }

    /// <summary>Parses an envelope; says why not when the bytes are not one CacheGuard can read.</summary>
    public static EnvelopeStatus TryRead(ReadOnlyMemory<byte> data, out EnvelopeHeader header, out ReadOnlyMemory<byte> payload, out string[]? tags)
    {
        header = default;
        payload = default;
        tags = null;
        ReadOnlySpan<byte> span = data.Span;
        if (span.Length < 8 || span[0] != (byte)'C' || span[1] != (byte)'G')
        {
            return EnvelopeStatus.Foreign;
        }

        if (span[2] != Version)
        {
            return EnvelopeStatus.UnknownVersion;
        }

        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(span[4..]);
        if (headerLength < HeaderSize || span.Length < headerLength)
        {
            return EnvelopeStatus.Corrupt;
        }

        int tagCount = BinaryPrimitives.ReadUInt16LittleEndian(span[6..]);
        header = new EnvelopeHeader(
            CreatedTicks: BinaryPrimitives.ReadInt64LittleEndian(span[8..]),
            ExpiresTicks: BinaryPrimitives.ReadInt64LittleEndian(span[16..]),
            LoadDurationTicks: BinaryPrimitives.ReadInt64LittleEndian(span[24..]),
            TypeTag: BinaryPrimitives.ReadUInt64LittleEndian(span[32..]),
            NotFound: (span[3] & FlagNotFound) != 0)
        {
            Removed = (span[3] & FlagRemoved) != 0,
        };
        int payloadLength = BinaryPrimitives.ReadInt32LittleEndian(span[40..]);

        int offset = headerLength;
        if (tagCount > 0)
        {
            tags = new string[tagCount];
            for (int i = 0; i < tagCount; i++)
            {
                if (span.Length - offset < 2)
                {
                    return EnvelopeStatus.Corrupt;
                }

                int length = BinaryPrimitives.ReadUInt16LittleEndian(span[offset..]);
                offset += 2;
                if (span.Length - offset < length)
                {
                    return EnvelopeStatus.Corrupt;
                }

                tags[i] = Encoding.UTF8.GetString(span.Slice(offset, length));
                offset += length;
            }
        }

        if (payloadLength < 0 || span.Length - offset != payloadLength || ((header.NotFound || header.Removed) && payloadLength != 0))
        {
            return EnvelopeStatus.Corrupt;
        }

        payload = data.Slice(offset, payloadLength);
        return EnvelopeStatus.Ok;
    }
}

internal readonly record struct EnvelopeHeader(long CreatedTicks, long ExpiresTicks, long LoadDurationTicks, ulong TypeTag, bool NotFound)
{
    /// <summary>Gets whether this is a removal mark ("removed at CreatedTicks"): a miss for readers, and newer than any write created before it for a replay.</summary>
    public bool Removed { get; init; }

    /// <summary>A removal mark made at <paramref name="removedTicks"/>, kept until <paramref name="expiresTicks"/>.</summary>
    public static EnvelopeHeader RemovalMark(long removedTicks, long expiresTicks) => new(removedTicks, expiresTicks, 0, 0, NotFound: false) { Removed = true };
}

internal enum EnvelopeStatus
{
    Ok,
    Foreign,
    UnknownVersion,
    Corrupt,
}

/// <summary>A stable 64-bit tag for a value type, written into envelopes so a payload is never read as another type.</summary>
internal static class TypeTag<T>
{
    public static readonly ulong Value = Compute(typeof(T).ToString());

    private static ulong Compute(string name)
    {
        // FNV-1a over the UTF-16 code units: stable across processes and runtimes (unlike string.GetHashCode).
        ulong hash = 14695981039346656037UL;
        foreach (char c in name)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return hash;
    }
}
