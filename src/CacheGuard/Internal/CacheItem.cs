namespace CacheGuard.Internal;

/// <summary>What L1 holds for a key: the value itself (never a copy) and when it logically expires.</summary>
internal abstract class CacheItem(long createdTicks, long expiresTicks, string[]? tags)
{
    /// <summary>Gets the entry's tags, or <see langword="null"/>: only tagged entries pay for tag checks on a hit.</summary>
    public string[]? Tags { get; } = tags;

    /// <summary>Gets when the value was produced, in UTC ticks.</summary>
    public long CreatedTicks { get; } = createdTicks;

    /// <summary>Gets when the value stops being fresh, in UTC ticks.</summary>
    public long ExpiresTicks { get; } = expiresTicks;

    public abstract Type ValueType { get; }
}

internal sealed class CacheItem<T>(T value, long createdTicks, long expiresTicks, string[]? tags = null) : CacheItem(createdTicks, expiresTicks, tags)
{
    public readonly T Value = value;

    public override Type ValueType => typeof(T);
}
