namespace CacheGuard.Soak;

/// <summary>The value the cache holds: the row's key and version (so every read can be judged), plus some bytes.</summary>
/// <param name="Key">The key the row belongs to: a value under another key is a mix-up.</param>
/// <param name="Version">The row's version when the database served or wrote it.</param>
/// <param name="Payload">Filler, so values have a realistic size.</param>
public sealed record Row(string Key, long Version, string Payload);

/// <summary>How a load reached the database.</summary>
internal enum LoadKind
{
    Single,
    Batch,
}

/// <summary>One write of a row: when its version became current in the database and when the cache call after it completed.</summary>
internal sealed class WriteRecord(long version, long databaseAt, int node, string operation)
{
    public long Version { get; } = version;

    public long DatabaseAt { get; } = databaseAt;

    public int Node { get; } = node;

    /// <summary><c>set</c> or <c>remove</c>: the cache call that followed the database write.</summary>
    public string Operation { get; } = operation;

    /// <summary>When <c>SetAsync</c>/<c>RemoveAsync</c> returned; 0 until then (and forever if it threw).</summary>
    public long CompletedAt { get; set; }
}

/// <summary>A loader call in progress at the database.</summary>
internal sealed class RunningLoad(long id, int node, long start, LoadKind kind)
{
    public long Id { get; } = id;

    public int Node { get; } = node;

    public long Start { get; } = start;

    public LoadKind Kind { get; } = kind;

    /// <summary>Set when the loader's token fires: its callers all gave up, so another load may start beside it.</summary>
    public volatile bool Cancelled;
}

/// <summary>A finished loader call, kept briefly to tell a miss's own loader time from its stall, and who ran it.</summary>
internal readonly record struct CompletedLoad(long Start, long End, int Node);

/// <summary>What happened to a key, for the history a violation's log entry shows.</summary>
internal enum KeyEventKind : byte
{
    LoadStart,
    LoadEnd,
    LoadFailed,
    DatabaseWrite,
    CacheCallDone,
}

/// <summary>One entry of a key's history: when, what, on which node, which version (the snapshot a load read).</summary>
internal readonly record struct KeyEvent(long At, KeyEventKind Kind, int Node, long Version, long LoadId, LoadKind LoadKind, string? Operation);

/// <summary>
/// One row of the simulated database and everything the invariant checks need to know about its key. Every field
/// marked "guarded" is read and written only under <see cref="Gate"/>.
/// </summary>
internal sealed class DbRow(string key, int index)
{
    public const int RecentLoads = 8;
    public const int HistoryLength = 48;

    public string Key { get; } = key;

    public int Index { get; } = index;

    public Lock Gate { get; } = new();

    /// <summary>Serialises writes of this key across the fleet (database write, then the cache call), as a row lock would.</summary>
    public SemaphoreSlim WriteGate { get; } = new(1, 1);

    /// <summary>Guarded: the current version (0 until the first write).</summary>
    public long Version;

    /// <summary>Guarded: recent writes in version order; completed ones older than the horizon are pruned.</summary>
    public List<WriteRecord> Writes { get; } = [];

    /// <summary>Guarded: the highest version whose record was pruned, and when its cache call completed.</summary>
    public long PrunedVersion;

    /// <inheritdoc cref="PrunedVersion"/>
    public long PrunedCompletedAt;

    /// <summary>Guarded: when the latest <c>SetAsync</c>/<c>RemoveAsync</c> of this key started on any node.</summary>
    public long LastInvalidationStart;

    /// <summary>Guarded: when that call returned (0 while it runs), and on which node it ran.</summary>
    public long LastInvalidationEnd;

    /// <inheritdoc cref="LastInvalidationEnd"/>
    public int LastInvalidationNode;

    /// <summary>Guarded: the key's last <see cref="HistoryLength"/> events, a ring (allocated up front: the heap stays flat).</summary>
    public KeyEvent[] History { get; } = new KeyEvent[HistoryLength];

    /// <summary>Guarded: the next slot of <see cref="History"/>.</summary>
    public int HistoryNext;

    /// <summary>
    /// Guarded: the last loads that returned a version a completed write had already replaced (their start and end
    /// events), a ring: the cache must not keep such a result, so these are the first suspects of a stale read.
    /// </summary>
    public (KeyEvent Start, KeyEvent End)[] LateLoads { get; } = new (KeyEvent, KeyEvent)[4];

    /// <summary>Guarded: the next slot of <see cref="LateLoads"/>.</summary>
    public int LateLoadsNext;

    /// <summary>Guarded: loader calls running now.</summary>
    public List<RunningLoad> Running { get; } = [];

    /// <summary>Guarded: the last <see cref="RecentLoads"/> finished loads, a ring.</summary>
    public CompletedLoad[] Recent { get; } = new CompletedLoad[RecentLoads];

    /// <summary>Guarded: the next slot of <see cref="Recent"/>.</summary>
    public int RecentNext;

    /// <summary>Appends to the history; the caller holds <see cref="Gate"/>.</summary>
    public void Record(KeyEvent entry)
    {
        History[HistoryNext] = entry;
        HistoryNext = (HistoryNext + 1) % HistoryLength;
    }

    /// <summary>Whether any node read this key (the convergence sweep reads exactly those).</summary>
    public volatile bool EverRead;
}
