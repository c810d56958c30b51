namespace CacheGuard.Internal;

/// <summary>
/// A value with its lifetimes, as read from L2 or about to be written there, and as L1 holds an entry with tags,
/// fail-safe or early refresh (with its bookkeeping in an <see cref="ItemState"/>: only such entries' hits read the
/// clock). A plain entry sits in L1 as its value itself: see <see cref="L1Slot"/>.
/// </summary>
internal abstract class CacheItem
{
    protected CacheItem(long createdTicks, long expiresTicks, string[]? tags, long loadDurationTicks)
    {
        CreatedTicks = createdTicks;
        ExpiresTicks = expiresTicks;
        LoadDurationTicks = loadDurationTicks;
        if (tags is not null)
        {
            State = new ItemState { Tags = tags };
        }
    }

    /// <summary>Gets when the value was read from its source (the start of its load), in UTC ticks.</summary>
    public long CreatedTicks { get; }

    /// <summary>Gets when the value stops being fresh anywhere (its L2 logical expiry), in UTC ticks.</summary>
    public long ExpiresTicks { get; }

    /// <summary>Gets how long the load that produced the value took (XFetch's Δ).</summary>
    public long LoadDurationTicks { get; }

    /// <summary>Gets the bookkeeping of an entry whose hits must check something; <see langword="null"/> for plain entries.</summary>
    public ItemState? State { get; private set; }

    /// <summary>Gets whether a hit must look at the clock or the tags: false for plain entries, whose hits cost a lookup only.</summary>
    public bool NeedsCheck => State is not null;

    /// <summary>Gets the entry's tags, or <see langword="null"/>.</summary>
    public string[]? Tags => State?.Tags;

    /// <summary>Gets when this L1 copy stops being fresh (<see cref="long.MaxValue"/> for plain entries, which L1 expires itself).</summary>
    public long LocalExpiresTicks => State?.LocalExpiresTicks ?? long.MaxValue;

    /// <summary>Gets whether this copy is kept past its local expiry as a fail-safe stand-in.</summary>
    public bool FailSafe => State?.FailSafe ?? false;

    public abstract Type ValueType { get; }

    /// <summary>Gets the state, creating it: called only by the code placing the item in L1, before anyone else sees it.</summary>
    public ItemState EnsureState() => State ??= new ItemState();
}

/// <summary>The hit-time bookkeeping of an entry with tags, fail-safe or early refresh.</summary>
internal sealed class ItemState
{
    private int _refreshing;

    public string[]? Tags { get; init; }

    public long LocalExpiresTicks { get; set; } = long.MaxValue;

    public long RefreshAtTicks { get; set; } = long.MaxValue;

    /// <summary>Gets or sets XFetch's β for this copy; 0 when probabilistic early refresh is off.</summary>
    public double Beta { get; set; }

    public bool FailSafe { get; set; }

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
/// How L1 holds an entry: a plain entry as its value itself (what every entry keeps alive is then no more than a raw
/// <c>IMemoryCache</c> entry's), <see langword="null"/> as a <see cref="NullValue{T}"/> marker; an entry with tags,
/// fail-safe or early refresh as a <see cref="CacheItem{T}"/> carrying its <see cref="ItemState"/>.
/// </summary>
internal static class L1Slot
{
    /// <summary>What L1 stores for a plain entry.</summary>
    public static object Wrap<T>(T value) => value is null ? NullValue<T>.Instance : value;

    /// <summary>Reads a plain entry as <typeparamref name="T"/>; false for a checked entry or another type.</summary>
    public static bool TryPlain<T>(object found, out T value)
    {
        if (found is T plain && found is not CacheItem && found is not NullValue)
        {
            value = plain;
            return true;
        }

        value = default!;
        return found is NullValue && default(T) is null; // a cached "not found" reads as null for any nullable T
    }

    /// <summary>Views what L1 holds as an item (allocating for a plain entry: slow paths only), or <see langword="null"/>.</summary>
    public static CacheItem<T>? AsItem<T>(object? found) => found switch
    {
        null => null,
        CacheItem<T> item => item,
        _ when TryPlain(found, out T value) => new CacheItem<T>(value, 0, long.MaxValue),
        _ => null,
    };

    /// <summary>The type an L1 entry holds, when it is not readable as <typeparamref name="T"/>; otherwise <see langword="null"/>.</summary>
    public static Type? OtherType<T>(object? found) => found switch
    {
        null or CacheItem<T> => null,
        CacheItem item => item.ValueType,
        _ when TryPlain<T>(found, out _) => null,
        NullValue marker => marker.ValueType,
        _ => found.GetType(),
    };
}

/// <summary>Marks a cached "not found" of a plain entry in L1.</summary>
internal abstract class NullValue
{
    public abstract Type ValueType { get; }
}

internal sealed class NullValue<T> : NullValue
{
    public static readonly NullValue<T> Instance = new();

    public override Type ValueType => typeof(T);
}
