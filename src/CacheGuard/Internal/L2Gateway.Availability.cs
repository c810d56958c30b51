using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Internal;

/// <summary>
/// L2 availability: the circuit breaker, the client's health report, how failures are reported (a warning when L2 starts
/// failing and a note when it answers again; per-call detail at debug level), and the replay queue that keeps failed
/// writes and removals from being silently forgotten. A queued write is replayed only if L2 holds nothing newer.
/// </summary>
internal sealed partial class L2Gateway : IDisposable
{
    private readonly CircuitBreaker _breaker;
    private readonly IDistributedCacheHealth? _health;
    private readonly CountedMap<PendingWrite> _pending = new();

    // Loads stored and writes replayed lately (their creation time), kept only when another node may announce a write of
    // the same key just after this node's write reached L2 over it. See TakeRecentWrite.
    private readonly ConcurrentDictionary<string, RecentWrite>? _recent;
    private readonly CountedMap<RecentWrite> _ownChanges = new();
    private int _recentAdded;
    private int _ownChangesAdded;
    private int _replaying;
    private int _failing;

    /// <summary>Occurs when the queue is full and a key's pending write was dropped: no node may keep serving the value L2 never saw.</summary>
    public event Action<string>? PendingWriteDropped;

    /// <summary>Raised when a queued write of a key (by cache key) was replayed into L2: other nodes must hear of it.</summary>
    public event Action<string>? EntryReplayed;

    /// <summary>Gets the breaker's state: a test hook.</summary>
    public BreakerState BreakerState => _breaker.State;

    /// <summary>Gets whether L2 is expected to answer: the client reports it connected and the breaker is not open.</summary>
    public bool IsAvailable => _health is not { IsAvailable: false } && _breaker.State != BreakerState.Open;

    /// <summary>Gets how many L2 writes wait for replay: a test hook.</summary>
    public int PendingWrites => _pending.Count;

    public void Dispose()
    {
        if (_health is not null)
        {
            _health.AvailabilityChanged -= OnAvailabilityChanged;
        }

        _readDeadlines.Dispose();
    }

    /// <summary>
    /// Records this node's own write or removal of <paramref name="key"/> (its creation time): for a while, an L2 entry of
    /// the key created before it is not trusted. Another node's older load may reach L2 just after this change (its write
    /// was on its way); this node, at least, never serves it after its own write.
    /// </summary>
    public void NoteOwnChange(string key, long createdTicks)
    {
        long now = _settings.Time.GetTimestamp();
        _ownChanges.Set(key, new RecentWrite(now, createdTicks));
        if (Interlocked.Increment(ref _ownChangesAdded) % 1024 == 0)
        {
            foreach (KeyValuePair<string, RecentWrite> pair in _ownChanges)
            {
                if (_settings.Time.GetElapsedTime(pair.Value.WrittenAt) > _settings.L2Timeout * 2)
                {
                    _ownChanges.TryRemove(pair);
                }
            }
        }
    }

    /// <summary>An item read from L2, unless it is older than this node's own recent write or removal of the key (then a miss).</summary>
    private CacheItem<T>? OlderThanOwnChange<T>(string key, CacheItem<T>? item) =>
        item is not null && _ownChanges.MayHaveEntries && _ownChanges.TryGetValue(key, out RecentWrite own)
            && item.CreatedTicks < own.CreatedTicks && _settings.Time.GetElapsedTime(own.WrittenAt) <= _settings.L2Timeout * 2
            ? null
            : item;

    /// <summary>Records that this node is storing (a load) or replaying a value of <paramref name="key"/> in L2 now.</summary>
    public void NoteRecentWrite(string key, long createdTicks)
    {
        if (_recent is null)
        {
            return;
        }

        long now = _settings.Time.GetTimestamp();
        _recent[key] = new RecentWrite(now, createdTicks);
        if (Interlocked.Increment(ref _recentAdded) % 1024 == 0)
        {
            foreach (KeyValuePair<string, RecentWrite> pair in _recent)
            {
                if (_settings.Time.GetElapsedTime(pair.Value.WrittenAt) > _settings.L2Timeout * 2)
                {
                    _recent.TryRemove(pair);
                }
            }
        }
    }

    /// <summary>
    /// Another node announced a write of <paramref name="key"/>. It is newer than a write of the key this node queued: that
    /// one becomes a queued removal (L2 may still hold a value older than both, which must not be served; a removal is
    /// never wrong, and it is not replayed over anything newer). And if this node stored a load of the key or replayed a
    /// write of it within the last two L2 deadlines, that value may have reached L2 after the announced write: its creation
    /// time is returned, to remove it again if L2 still holds it.
    /// </summary>
    public bool TakeRecentWrite(string key, out long createdTicks)
    {
        createdTicks = 0;
        string l2Key = _settings.Keys.Entry(key);
        if (_pending.TryGetValue(l2Key, out PendingWrite? queued) && TurnIntoRemoval(l2Key, queued))
        {
            string logKey = _settings.LogKey(key);
            Log.PendingWriteSuperseded(_logger, _settings.Name, logKey);
        }

        if (_recent is null || !_recent.TryRemove(key, out RecentWrite recent))
        {
            return false;
        }

        createdTicks = recent.CreatedTicks;
        return _settings.Time.GetElapsedTime(recent.WrittenAt) <= _settings.L2Timeout * 2;
    }

    /// <summary>Whether a write or removal of this key waits for replay: what L2 holds for it is older than what this node wrote.</summary>
    private bool HasPending(string l2Key) => _pending.MayHaveEntries && _pending.ContainsKey(l2Key);

    /// <summary>Whether an L2 call may go ahead now: the client says it is connected and the breaker lets it through.</summary>
    private bool Allowed()
    {
        if (_health is { IsAvailable: false })
        {
            return false;
        }

        bool allowed = _breaker.AllowCall(out BreakerTransition transition);
        Report(transition);
        return allowed;
    }

    private void Succeeded()
    {
        Report(_breaker.OnSuccess());
        if (Interlocked.Exchange(ref _failing, 0) == 1)
        {
            Log.L2Recovered(_logger, _settings.Name);
        }

        if (_pending.MayHaveEntries && Interlocked.CompareExchange(ref _replaying, 1, 0) == 0)
        {
            _background.Track(ReplayAsync(), "(pending writes)");
        }
    }

    /// <summary>A write or removal reached L2: it supersedes any older one for the key waiting for replay.</summary>
    private void Written(string l2Key)
    {
        _pending.TryRemove(l2Key, out _);
        Succeeded();
    }

    /// <summary>
    /// Records an L2 call that failed (<paramref name="exception"/>) or timed out (<see langword="null"/>): it counts
    /// towards the breaker (a connection-level failure opens it at once), marks the trace, is counted, and is logged: a
    /// warning the first time after a success, debug detail every time.
    /// </summary>
    private void Failed(string operation, string key, Exception? exception, Activity? activity)
    {
        bool connectionLost = exception is not null && _health is not null && _health.IsConnectionFailure(exception);
        bool keyError = IsKeyError(exception);
        // A key the server refuses (wrong type, unusable data) says nothing bad about L2 as a whole, only that it answers
        // (a breaker's probe that met one closes it); only failures that do (timeouts, connection failures) count towards it.
        Report(keyError ? _breaker.OnSuccess() : connectionLost ? _breaker.ForceOpen() : _breaker.OnFailure());

        string errorType = exception is null ? "timeout" : "exception";
        CacheTelemetry.Fail(activity, errorType, exception);
        _metrics.L2Error(operation, errorType);
        string logKey = _settings.LogKey(key);
        if (keyError && operation == OperationRead)
        {
            // One entry the server refuses to read (another kind of data): the key is a miss and the next load's write
            // repairs it; L2 as a whole is fine, so this is not a change of its state.
            Log.L2PayloadRejected(_logger, _settings.Name, logKey, $"the server refused to read it: {exception!.Message}", exception);
            return;
        }

        if (Interlocked.Exchange(ref _failing, 1) == 0)
        {
            Log.L2Failing(_logger, _settings.Name, operation, exception?.GetType().Name ?? "timeout", exception?.Message ?? $"no answer within {_settings.L2Timeout}");
        }

        switch (operation)
        {
            case OperationRead when exception is null:
                Log.L2ReadTimedOut(_logger, _settings.Name, logKey, _settings.L2Timeout);
                break;
            case OperationRead:
                Log.L2ReadFailed(_logger, _settings.Name, logKey, exception!);
                break;
            case OperationWrite when exception is null:
                Log.L2WriteTimedOut(_logger, _settings.Name, logKey, _settings.L2Timeout);
                break;
            case OperationWrite:
                Log.L2WriteFailed(_logger, _settings.Name, logKey, exception!);
                break;
            case OperationRemove when exception is null:
                Log.L2RemoveTimedOut(_logger, _settings.Name, logKey, _settings.L2Timeout);
                break;
            default:
                Log.L2RemoveFailed(_logger, _settings.Name, logKey, exception!);
                break;
        }
    }

    /// <summary>
    /// Whether a failure concerns one key only: the client reports its health and says this is not a connection failure,
    /// and it is not a timeout (for example, a key holding another kind of data than the client expects).
    /// </summary>
    private bool IsKeyError(Exception? exception) =>
        exception is not null and not TimeoutException and not OperationCanceledException && _health is not null && !_health.IsConnectionFailure(exception);

    private void Report(BreakerTransition transition)
    {
        switch (transition)
        {
            case BreakerTransition.Opened:
                _metrics.CircuitBreaker("open");
                Log.CircuitBreakerOpened(_logger, _settings.Name, _settings.BreakerThreshold, _settings.BreakerWindow, _settings.BreakerDuration);
                break;
            case BreakerTransition.HalfOpened:
                _metrics.CircuitBreaker("half_open");
                break;
            case BreakerTransition.Closed:
                _metrics.CircuitBreaker("closed");
                Log.CircuitBreakerClosed(_logger, _settings.Name);
                break;
        }
    }

    /// <summary>The client reports its connection state: when it is back, close the breaker and replay at once.</summary>
    private void OnAvailabilityChanged(object? sender, EventArgs e)
    {
        if (_health is { IsAvailable: true })
        {
            Report(_breaker.Reset());
            if (_pending.MayHaveEntries && Interlocked.CompareExchange(ref _replaying, 1, 0) == 0)
            {
                _background.Track(ReplayAsync(), "(pending writes)");
            }
        }
    }
}
