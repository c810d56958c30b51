using System.Buffers;

namespace CacheGuard.Redis.Internal;

/// <summary>What <c>HMGET key absexp sldexp [data]</c> returned, in <c>RedisCache</c>'s layout.</summary>
internal readonly struct CacheEntryReply
{
    public const long NotPresent = -1;

    public CacheEntryReply(bool exists, long absoluteTicks, long slidingTicks, byte[]? data, int length, bool pooled)
    {
        Exists = exists;
        AbsoluteTicks = absoluteTicks;
        SlidingTicks = slidingTicks;
        Data = data;
        Length = length;
        Pooled = pooled;
    }

    /// <summary>Gets a value indicating whether the hash exists (any field was present).</summary>
    public bool Exists { get; }

    public long AbsoluteTicks { get; }

    public long SlidingTicks { get; }

    /// <summary>Gets the data: an exact array, or a rented one of which <see cref="Length"/> bytes are used.</summary>
    public byte[]? Data { get; }

    public int Length { get; }

    public bool Pooled { get; }

    public void Return()
    {
        if (Pooled && Data is not null)
        {
            ArrayPool<byte>.Shared.Return(Data);
        }
    }
}

internal enum HashGetMode
{
    /// <summary>Metadata only (refresh).</summary>
    Metadata,

    /// <summary>Data copied into an exact-size array (<c>Get</c>).</summary>
    Array,

    /// <summary>Data copied into a rented array the caller returns (<c>TryGet</c> into a buffer writer).</summary>
    Pooled,
}

/// <summary>Pre-encoded pieces of the cache's commands.</summary>
internal static class CacheCommands
{
    public static ReadOnlySpan<byte> HmGetWithData => "*5\r\n$5\r\nHMGET\r\n"u8;

    public static ReadOnlySpan<byte> HmGetMetadata => "*4\r\n$5\r\nHMGET\r\n"u8;

    public static ReadOnlySpan<byte> FieldsWithData => "$6\r\nabsexp\r\n$6\r\nsldexp\r\n$4\r\ndata\r\n"u8;

    public static ReadOnlySpan<byte> FieldsMetadata => "$6\r\nabsexp\r\n$6\r\nsldexp\r\n"u8;

    public static ReadOnlySpan<byte> HSet => "*8\r\n$4\r\nHSET\r\n"u8;

    public static ReadOnlySpan<byte> AbsExpField => "$6\r\nabsexp\r\n"u8;

    public static ReadOnlySpan<byte> SldExpField => "$6\r\nsldexp\r\n"u8;

    public static ReadOnlySpan<byte> DataField => "$4\r\ndata\r\n"u8;

    public static ReadOnlySpan<byte> Expire => "*3\r\n$6\r\nEXPIRE\r\n"u8;

    public static ReadOnlySpan<byte> Del => "*2\r\n$3\r\nDEL\r\n"u8;

    public static void WriteHmGet(PooledBufferWriter writer, byte[] prefix, string key, bool withData)
    {
        writer.Write(withData ? HmGetWithData : HmGetMetadata);
        Resp.WriteBulk(writer, prefix, key);
        writer.Write(withData ? FieldsWithData : FieldsMetadata);
    }

    public static void WriteExpire(PooledBufferWriter writer, byte[] prefix, string key, long seconds)
    {
        writer.Write(Expire);
        Resp.WriteBulk(writer, prefix, key);
        Resp.WriteBulk(writer, seconds);
    }

    /// <summary>Parses one HMGET reply; the reader holds exactly that reply.</summary>
    public static CacheEntryReply ReadHmGet(ref SequenceReader<byte> reader, HashGetMode mode)
    {
        byte type = Resp.ReadType(ref reader);
        if (type != Resp.Array)
        {
            throw new RedisProtocolException($"HMGET returned RESP type '{(char)type}' instead of an array.");
        }

        long count = Resp.ReadLineInt64(ref reader);
        bool exists = false;
        long absolute = CacheEntryReply.NotPresent, sliding = CacheEntryReply.NotPresent;
        byte[]? data = null;
        int length = 0;
        for (int i = 0; i < count; i++)
        {
            Resp.ReadType(ref reader);
            if (!Resp.ReadBulk(ref reader, out ReadOnlySequence<byte> field))
            {
                continue;
            }

            exists = true;
            switch (i)
            {
                case 0:
                    absolute = Resp.TryParseInt64(field, out long a) ? a : CacheEntryReply.NotPresent;
                    break;
                case 1:
                    sliding = Resp.TryParseInt64(field, out long s) ? s : CacheEntryReply.NotPresent;
                    break;
                default:
                    length = checked((int)field.Length);
                    data = mode == HashGetMode.Pooled ? ArrayPool<byte>.Shared.Rent(Math.Max(length, 1)) : (length == 0 ? [] : GC.AllocateUninitializedArray<byte>(length));
                    field.CopyTo(data);
                    break;
            }
        }

        return new CacheEntryReply(exists, absolute, sliding, data, length, mode == HashGetMode.Pooled && data is not null);
    }
}

/// <summary><c>HMGET key absexp sldexp [data]</c>.</summary>
internal sealed class HashGetOperation : PendingOperation<CacheEntryReply>
{
    private readonly byte[] _prefix;
    private readonly string _key;
    private readonly HashGetMode _mode;

    public HashGetOperation(byte[] prefix, string key, HashGetMode mode)
    {
        _prefix = prefix;
        _key = key;
        _mode = mode;
    }

    public override void Write(PooledBufferWriter writer) => CacheCommands.WriteHmGet(writer, _prefix, _key, _mode != HashGetMode.Metadata);

    public override void OnReply(ref SequenceReader<byte> reader, int index)
    {
        if (IsError(ref reader))
        {
            Fail(ReadError(ref reader));
            return;
        }

        if (IsCompleted)
        {
            return; // timed out or cancelled: do not copy a value nobody will read
        }

        Succeed(CacheCommands.ReadHmGet(ref reader, _mode));
    }

    protected override void Discard(CacheEntryReply result) => result.Return();
}

/// <summary>Many <c>HMGET key absexp sldexp data</c> written in one flush; the payloads in key order.</summary>
internal sealed class BatchGetOperation : MultiReplyOperation<CacheEntryReply[]>
{
    private readonly byte[] _prefix;
    private readonly IReadOnlyList<string> _keys;
    private readonly CacheEntryReply[] _replies;

    public BatchGetOperation(byte[] prefix, IReadOnlyList<string> keys)
    {
        _prefix = prefix;
        _keys = keys;
        _replies = new CacheEntryReply[keys.Count];
    }

    public override int ReplyCount => _keys.Count;

    public override void Write(PooledBufferWriter writer)
    {
        for (int i = 0; i < _keys.Count; i++)
        {
            CacheCommands.WriteHmGet(writer, _prefix, _keys[i], withData: true);
        }
    }

    protected override void OnValue(ref SequenceReader<byte> reader, int index) =>
        _replies[index] = CacheCommands.ReadHmGet(ref reader, HashGetMode.Array);

    protected override CacheEntryReply[] Result() => _replies;
}

/// <summary><c>HSET key absexp A sldexp S data D</c>, followed in the same write by <c>EXPIRE key ttl</c> when the entry expires.</summary>
internal sealed class SetOperation : MultiReplyOperation<bool>
{
    private readonly byte[] _prefix;
    private readonly string _key;
    private readonly ReadOnlySequence<byte> _value;
    private readonly long _absoluteTicks;
    private readonly long _slidingTicks;
    private readonly long _ttlSeconds; // -1: no EXPIRE

    public SetOperation(byte[] prefix, string key, ReadOnlySequence<byte> value, long absoluteTicks, long slidingTicks, long ttlSeconds)
    {
        _prefix = prefix;
        _key = key;
        _value = value;
        _absoluteTicks = absoluteTicks;
        _slidingTicks = slidingTicks;
        _ttlSeconds = ttlSeconds;
    }

    public override int ReplyCount => _ttlSeconds < 0 ? 1 : 2;

    public override void Write(PooledBufferWriter writer)
    {
        writer.Write(CacheCommands.HSet);
        Resp.WriteBulk(writer, _prefix, _key);
        writer.Write(CacheCommands.AbsExpField);
        Resp.WriteBulk(writer, _absoluteTicks);
        writer.Write(CacheCommands.SldExpField);
        Resp.WriteBulk(writer, _slidingTicks);
        writer.Write(CacheCommands.DataField);
        Resp.WriteBulk(writer, _value);
        if (_ttlSeconds >= 0)
        {
            CacheCommands.WriteExpire(writer, _prefix, _key, _ttlSeconds);
        }
    }

    protected override bool Result() => true;
}

/// <summary><c>EXPIRE key seconds</c> for one or many keys, written together (sliding refresh).</summary>
internal sealed class ExpireOperation : MultiReplyOperation<bool>
{
    private readonly byte[] _prefix;
    private readonly string[] _keys;
    private readonly long[] _seconds;

    public ExpireOperation(byte[] prefix, string[] keys, long[] seconds)
    {
        _prefix = prefix;
        _keys = keys;
        _seconds = seconds;
    }

    public override int ReplyCount => _keys.Length;

    public override void Write(PooledBufferWriter writer)
    {
        for (int i = 0; i < _keys.Length; i++)
        {
            CacheCommands.WriteExpire(writer, _prefix, _keys[i], _seconds[i]);
        }
    }

    protected override bool Result() => true;
}

/// <summary><c>DEL key</c>.</summary>
internal sealed class DeleteOperation : PendingOperation<bool>
{
    private readonly byte[] _prefix;
    private readonly string _key;

    public DeleteOperation(byte[] prefix, string key)
    {
        _prefix = prefix;
        _key = key;
    }

    public override void Write(PooledBufferWriter writer)
    {
        writer.Write(CacheCommands.Del);
        Resp.WriteBulk(writer, _prefix, _key);
    }

    public override void OnReply(ref SequenceReader<byte> reader, int index)
    {
        if (IsError(ref reader))
        {
            Fail(ReadError(ref reader));
            return;
        }

        reader.Advance(1);
        Succeed(Resp.ReadLineInt64(ref reader) > 0);
    }
}

/// <summary>An operation answered by several replies: the first error wins, and it completes at the last reply.</summary>
internal abstract class MultiReplyOperation<TResult> : PendingOperation<TResult>
{
    private Exception? _error; // reader loop only

    public sealed override void OnReply(ref SequenceReader<byte> reader, int index)
    {
        if (IsError(ref reader))
        {
            _error ??= ReadError(ref reader);
        }
        else if (!IsCompleted)
        {
            OnValue(ref reader, index);
        }

        if (index == ReplyCount - 1)
        {
            if (_error is not null)
            {
                Fail(_error);
            }
            else
            {
                Succeed(Result());
            }
        }
    }

    /// <summary>Reads one successful reply; by default the reply carries nothing the result needs.</summary>
    protected virtual void OnValue(ref SequenceReader<byte> reader, int index)
    {
    }

    protected abstract TResult Result();
}
