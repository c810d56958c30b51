using System.Collections.Concurrent;
using System.Globalization;

namespace CacheGuard.Tests.Model;

internal enum OpKind
{
    Get,
    GetMany,
    TryGet,
    Set,
    Remove,
    RemoveByTag,
    AuditTryGet,
    AuditGet,
}

/// <summary>
/// One call made by a caller: when it was invoked and when it returned (positions in the run's global order, and the
/// fake clock then), and what it returned or threw. Written only by the caller's own flow; read once the run is over.
/// </summary>
internal sealed class OpRecord
{
    private long _invokedAt;
    private long _returnedAt;

    public required int Id { get; init; }

    public required int Node { get; init; }

    public required OpKind Kind { get; init; }

    public required int[] Keys { get; init; }

    public string? Tag { get; init; }

    /// <summary>The step that started this call (1-based), or 0 for the audit reads at the end of a run.</summary>
    public int Step { get; init; }

    public long InvokedAt { get => Volatile.Read(ref _invokedAt); set => Volatile.Write(ref _invokedAt, value); }

    /// <summary>0 while the call has not returned.</summary>
    public long ReturnedAt { get => Volatile.Read(ref _returnedAt); set => Volatile.Write(ref _returnedAt, value); }

    public DateTimeOffset InvokedClock { get; set; }

    public DateTimeOffset ReturnedClock { get; set; }

    public bool Returned => ReturnedAt != 0;

    /// <summary>The value (a stamp) returned for each key.</summary>
    public ConcurrentDictionary<int, long> Values { get; } = new();

    public CacheLookupStatus? Lookup { get; set; }

    public Exception? Error { get; set; }

    /// <summary>For writes: the version of each key the call wrote to the database just before calling the cache.</summary>
    public ConcurrentDictionary<int, long> Written { get; } = new();

    public bool IsWrite => Kind is OpKind.Set or OpKind.Remove or OpKind.RemoveByTag;

    public bool IsRead => !IsWrite;

    public string Name => Step == 0 ? "audit" + Id.ToString(CultureInfo.InvariantCulture) : "c" + Id.ToString(CultureInfo.InvariantCulture);

    public string Describe()
    {
        string keys = string.Join(", ", Keys.Select(ModelConfig.KeyName));
        string what = Kind switch
        {
            OpKind.RemoveByTag => $"RemoveByTag({Tag})",
            OpKind.Set or OpKind.Remove => $"{Kind}({keys})",
            _ => $"{Kind}({keys})",
        };
        return $"{Name} on {ModelConfig.NodeName(Node)}: {what}" + (Step > 0 ? $" [step {Step}]" : string.Empty);
    }
}

internal enum LoaderOutcome
{
    Running,
    Value,
    Failed,
    Cancelled,
}

/// <summary>One execution of a loader: which keys, on which node, for which caller, when it ran and how it ended.</summary>
internal sealed class LoaderRun
{
    private long _endedAt;

    public required int Id { get; init; }

    public required int Node { get; init; }

    public required int[] Keys { get; init; }

    /// <summary>The caller whose flow invoked the loader (a background refresh counts as its hit's caller).</summary>
    public required int OpId { get; init; }

    public required long StartedAt { get; init; }

    public required DateTimeOffset StartedClock { get; init; }

    public long EndedAt { get => Volatile.Read(ref _endedAt); set => Volatile.Write(ref _endedAt, value); }

    public DateTimeOffset EndedClock { get; set; }

    public LoaderOutcome Outcome { get; set; }

    public Dictionary<int, long> Stamps { get; } = [];

    public string Name => "loader #" + Id.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Where a value (a stamp) came from: the key and database version it carries, and what produced it.</summary>
internal sealed record Producer(long Stamp, int Key, long Version, bool FromSet, int SourceId, int Node)
{
    public string Describe() =>
        $"{ModelConfig.KeyName(Key)} v{Version} (stamp {Stamp}, {(FromSet ? "written by c" + SourceId : "read by loader #" + SourceId)} on {ModelConfig.NodeName(Node)})";
}

/// <summary>Two loaders of one key on one node running at the same time: <see cref="Later"/> started while <see cref="Earlier"/> ran.</summary>
internal sealed record LoaderOverlap(LoaderRun Earlier, LoaderRun Later, int Key);

internal enum L2CallKind
{
    Get,
    Set,
    Remove,
}

internal enum L2CallOutcome
{
    Pending,
    Succeeded,
    Failed,
    Cancelled,
    Hung,
}

/// <summary>One call that reached the shared L2, attributed to the caller whose flow made it.</summary>
internal sealed class L2Call
{
    public required int Id { get; init; }

    public required int OpId { get; init; }

    public required L2CallKind Kind { get; init; }

    public required string Key { get; init; }

    public required L2Mode Mode { get; init; }

    public required long ArrivedAt { get; init; }

    public long EndedAt { get; set; }

    public L2CallOutcome Outcome { get; set; }
}

/// <summary>
/// The run's world outside the cache: a versioned database (every write increments a row's version), the table of
/// every value ever produced, and the history of calls, loaders and L2 calls, ordered by one atomic counter.
/// </summary>
internal sealed class ModelWorld(ModelConfig config, FakeTimeProvider time)
{
    /// <summary>The caller whose flow is running: set around each call, flows into everything the cache does for it.</summary>
    public static readonly AsyncLocal<OpRecord?> CurrentOp = new();

    private readonly long[] _rows = new long[config.Keys.Length];
    private long _sequence;
    private long _stamps;

    public ModelConfig Config { get; } = config;

    public FakeTimeProvider Time { get; } = time;

    public ConcurrentDictionary<long, Producer> Producers { get; } = new();

    public ConcurrentQueue<OpRecord> Ops { get; } = new();

    public ConcurrentQueue<LoaderRun> Loaders { get; } = new();

    public ConcurrentQueue<LoaderOverlap> Overlaps { get; } = new();

    public ConcurrentQueue<L2Call> L2Calls { get; } = new();

    public ConcurrentQueue<string> UnobservedExceptions { get; } = new();

    /// <summary>The background work each node still had when the run gave up waiting (0 when everything finished).</summary>
    public int[] BackgroundLeft { get; set; } = [];

    /// <summary>The next position in the run's global order; every recorded event takes one.</summary>
    public long Next() => Interlocked.Increment(ref _sequence);

    /// <summary>How many events have happened: progress, for waiting until the run is quiet.</summary>
    public long Progress => Volatile.Read(ref _sequence);

    public DateTimeOffset Now => Time.GetUtcNow();

    public long WriteRow(int key) => Interlocked.Increment(ref _rows[key]);

    public long ReadRow(int key) => Volatile.Read(ref _rows[key]);

    public long Produce(int key, long version, bool fromSet, int sourceId, int node)
    {
        long stamp = Interlocked.Increment(ref _stamps);
        Producers[stamp] = new Producer(stamp, key, version, fromSet, sourceId, node);
        return stamp;
    }

    public OpRecord? Op(int id) => Ops.FirstOrDefault(o => o.Id == id);
}
