using System.Runtime.CompilerServices;

namespace CacheGuard.Internal;

/// <summary>
/// A value with its lifetimes: as read from L2 or about to be written there, and as L1 holds an entry whose hits must
/// check something (tags, fail-safe, early refresh), with that bookkeeping in an <see cref="ItemState"/>. A plain entry
/// sits in L1 as its value itself: see <see cref="L1Slot"/>.
/// </summary>
internal abstract class CacheItem
{
    protected CacheItem(long createdTicks, long expiresTicks, string[]? tags, long loadDurationTicks)
    {
        CreatedTicks = createdTicks;
        ExpiresTicks = expiresTicks;
        LoadDurationTicks = loadDurationTicks;
        Tags = tags;
    }

    /// <summary>Gets when the work that produced the value started (its load, or the write), in UTC ticks.</summary>
    public long CreatedTicks { get; }

    /// <summary>Gets when the value stops being fresh anywhere (its logical L2 expiry), in UTC ticks.</summary>
    public long ExpiresTicks { get; }

    /// <summary>Gets how long the load that produced the value took (XFetch's Δ).</summary>
    public long LoadDurationTicks { get; }

    /// <summary>Gets the entry's tags, or <see langword="null"/>.</summary>
    public string[]? Tags { get; }

    /// <summary>Gets the hit-time bookkeeping of this L1 copy; <see langword="null"/> for an item not placed in L1 as an item.</summary>
    public ItemState? State { get; private set; }

    /// <summary>Gets when this L1 copy stops being fresh.</summary>
    public long LocalExpiresTicks => State?.LocalExpiresTicks ?? ExpiresTicks;

    /// <summary>Gets whether this copy may stand in for a failed or slow reload (fail-safe).</summary>
    public bool FailSafe => State?.FailSafe ?? false;

    public abstract Type ValueType { get; }

    /// <summary>Attaches the hit-time state: called only by the L1 store placing the item, before anyone else sees it.</summary>
    public void Attach(ItemState state) => State = state;
}

/// <summary>The hit-time bookkeeping of an L1 item.</summary>
internal sealed class ItemState
{
    private int _refreshing;

    /// <summary>Gets when this copy stops being fresh.</summary>
    public long LocalExpiresTicks { get; init; } = long.MaxValue;

    /// <summary>Gets when a hit starts an eager refresh (<see cref="long.MaxValue"/>: never).</summary>
    public long RefreshAtTicks { get; init; } = long.MaxValue;

    /// <summary>Gets XFetch's β for this copy; 0 when probabilistic early refresh is off.</summary>
    public double Beta { get; init; }

    /// <summary>Gets whether this copy is kept past its expiry as a fail-safe stand-in.</summary>
    public bool FailSafe { get; init; }

    /// <summary>Gets the last moment this copy may be served as a stale stand-in: its logical expiry plus FailSafeMaxDuration.</summary>
    public long StaleUntilTicks { get; init; }

    /// <summary>Claims the one background refresh this copy may start.</summary>
    public bool TryStartRefresh() => Interlocked.Exchange(ref _refreshing, 1) == 0;
}

internal sealed class CacheItem<T>(T value, long createdTicks, long expiresTicks, string[]? tags = null, long loadDurationTicks = 0)
    : CacheItem(createdTicks, expiresTicks, tags, loadDurationTicks)
{
    public readonly T Value = value;

    public override Type ValueType => typeof(T);
}

/// <summary>
/// How L1 holds a plain entry, and the one typing rule for every level: <b>a key cached as <c>T</c> reads
/// only as exactly <c>T</c></b>. A value whose runtime type is exactly <c>T</c> is stored
/// as itself (what L1 keeps alive is then no more than a raw <c>IMemoryCache</c> entry's); any other value, and
/// <see langword="null"/>, in a <see cref="TypedValue{T}"/> that records <c>T</c>. Items are
/// <see cref="CacheItem{T}"/>, and L2 envelopes carry <see cref="TypeTag{T}"/>: the same rule everywhere.
/// </summary>
internal static class L1Slot
{
    /// <summary>What L1 stores for a plain entry.</summary>
    public static object Wrap<T>(T value) => value is not null && value.GetType() == typeof(T) ? value : new TypedValue<T>(value);

    /// <summary>Reads a plain entry as <typeparamref name="T"/>; false for an item or another type.</summary>
    public static bool TryPlain<T>(object found, out T value)
    {
        if (found.GetType() == typeof(T))
        {
            // Exactly T (one check, the common case): a reference needs no further cast, a struct is unboxed.
            value = typeof(T).IsValueType ? (T)found : Unsafe.As<object, T>(ref found);
            return true;
        }

        if (found is TypedValue<T> typed)
        {
            value = typed.Value;
            return true;
        }

        value = default!;
        return false;
    }

    /// <summary>Views what L1 holds as an item (allocating for a plain entry: slow paths only), or <see langword="null"/>.</summary>
    public static CacheItem<T>? AsItem<T>(object? found) => found switch
    {
        null => null,
        CacheItem<T> item => item,
        _ when TryPlain(found, out T value) => new CacheItem<T>(value, 0, long.MaxValue),
        _ => null,
    };

    /// <summary>The type an L1 entry was cached as, when that is not <typeparamref name="T"/>; otherwise <see langword="null"/>.</summary>
    public static Type? OtherType<T>(object? found) => found switch
    {
        null or CacheItem<T> or TypedValue<T> => null,
        CacheItem item => item.ValueType,
        TypedValue typed => typed.ValueType,
        _ when found.GetType() == typeof(T) => null,
        _ => found.GetType(),
    };
}

/// <summary>A plain L1 entry whose value is not exactly of the type it was cached as (or is <see langword="null"/>).</summary>
internal abstract class TypedValue
{
    public abstract Type ValueType { get; }
}

internal sealed class TypedValue<T>(T value) : TypedValue
{
    public readonly T Value = value;

    public override Type ValueType => typeof(T);
}
