using System.Collections.Concurrent;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Internal;

/// <summary>
/// L2 availability: the circuit breaker around every L2 call, and the replay queue that keeps failed writes and removals
/// from being silently forgotten. While L2 is unavailable, a write or removal is queued (the latest per key wins) and
/// replayed once an L2 call succeeds again. When the queue is full, a key that does not fit is dropped from L1 as well,
/// so this node does not serve, for longer than its L1 lifetime, a value L2 never saw.
/// </summary>
internal sealed partial class DefaultCoalescingCache
{
    private readonly CircuitBreaker _breaker;
    private readonly ConcurrentDictionary<string, PendingWrite> _pending = new(StringComparer.Ordinal);
    private readonly int _maxPending;
    private int _replaying;

    /// <summary>Gets the breaker's state: a test hook.</summary>
    internal BreakerState BreakerState => _breaker.State;

    /// <summary>Gets how many L2 writes wait for replay: a test hook.</summary>
    internal int PendingWrites => _pending.Count;

    /// <summary>Whether an L2 call may go ahead; logs and counts the breaker's move to half-open.</summary>
    private bool L2Allowed()
    {
        if (_health is { IsAvailable: false })
        {
            return false; // the L2 client knows it is disconnected: don't wait for a call bound to fail
        }

        bool allowed = _breaker.AllowCall(out BreakerTransition transition);
        Report(transition);
        return allowed;
    }

    private void L2Succeeded()
    {
        Report(_breaker.OnSuccess());
        if (!_pending.IsEmpty && Interlocked.CompareExchange(ref _replaying, 1, 0) == 0)
        {
            TrackBackground(ReplayAsync(), "(pending writes)");
        }
    }

    private void L2Failed(Exception? exception = null) =>
        Report(exception is not null && _health is not null && _health.IsConnectionFailure(exception) ? _breaker.ForceOpen() : _breaker.OnFailure());

    /// <summary>The L2 client reports its connection state: when it is back, close the breaker and replay at once.</summary>
    private void OnL2AvailabilityChanged(object? sender, EventArgs e)
    {
        if (_health is { IsAvailable: true })
        {
            Report(_breaker.Reset());
            if (!_pending.IsEmpty && Interlocked.CompareExchange(ref _replaying, 1, 0) == 0)
            {
                TrackBackground(ReplayAsync(), "(pending writes)");
            }
        }
    }

    private void Report(BreakerTransition transition)
    {
        switch (transition)
        {
            case BreakerTransition.Opened:
                _metrics.CircuitBreaker("open");
                Log.CircuitBreakerOpened(_logger, _name, _breakerThreshold, _breakerWindow, _breakerDuration);
                break;
            case BreakerTransition.HalfOpened:
                _metrics.CircuitBreaker("half_open");
                break;
            case BreakerTransition.Closed:
                _metrics.CircuitBreaker("closed");
                Log.CircuitBreakerClosed(_logger, _name);
                break;
        }
    }

    /// <summary>
    /// Keeps a write or removal L2 did not take, for replay; the latest per key wins. Returns <see langword="false"/>
    /// when the queue is full and the key was dropped (from L1 too): the caller must then not write L1 either.
    /// </summary>
    private bool Defer(string l2Key, string key, byte[]? value, DateTimeOffset expires)
    {
        var write = new PendingWrite(value, expires);
        if (_pending.Count >= _maxPending && !_pending.ContainsKey(l2Key))
        {
            _l1.Remove(key);
            Log.PendingWriteDropped(_logger, _name, LogKey(key));
            return false;
        }

        _pending[l2Key] = write;
        return true;
    }

    private async Task ReplayAsync()
    {
        int replayed = 0;
        try
        {
            foreach (KeyValuePair<string, PendingWrite> pending in _pending)
            {
                if (!L2Allowed())
                {
                    return;
                }

                // Only the entry we read: a newer write for the key, queued meanwhile, stays for its own replay.
                if (!_pending.TryRemove(pending))
                {
                    continue;
                }

                PendingWrite write = pending.Value;
                using var deadline = new L2Deadline(_l2Timeout, _time, CancellationToken.None);
                try
                {
                    if (write.Value is null)
                    {
                        await BoundAsync(_l2!.RemoveAsync(pending.Key, deadline.Token), deadline.Token).ConfigureAwait(false);
                    }
                    else
                    {
                        TimeSpan left = write.Expires - _time.GetUtcNow();
                        if (left <= TimeSpan.Zero)
                        {
                            continue; // expired while waiting: nothing to write
                        }

                        var entryOptions = new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = left };
                        await BoundAsync(_l2!.SetAsync(pending.Key, write.Value, entryOptions, deadline.Token), deadline.Token).ConfigureAwait(false);
                    }

                    replayed++;
                    Report(_breaker.OnSuccess());
                }
#pragma warning disable CA1031 // Still failing: put it back (unless newer) and stop until the next success.
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    _pending.TryAdd(pending.Key, write);
                    _metrics.L2Error("replay", ex is OperationCanceledException ? "timeout" : "exception");
                    L2Failed();
                    return;
                }
            }
        }
        finally
        {
            if (replayed > 0)
            {
                Log.PendingWritesReplayed(_logger, _name, replayed);
            }

            Volatile.Write(ref _replaying, 0);
        }
    }

    private sealed record PendingWrite(byte[]? Value, DateTimeOffset Expires);
}
