namespace CacheGuard.Internal;

/// <summary>
/// Stops calling a failing L2: after <c>threshold</c> failures within <c>window</c> it opens for <c>duration</c>; then one
/// call probes, which closes it on success or reopens it on failure. Thread-safe; time from the injected clock.
/// </summary>
internal sealed class CircuitBreaker(int threshold, TimeSpan window, TimeSpan duration, TimeProvider time)
{
    private readonly Lock _gate = new();
    private readonly Queue<long> _failures = new(); // guarded: failure times within the window
    private volatile BreakerState _state; // written under _gate; read without it where a moment-old state is as good (see AllowCall)
    private long _openUntil; // guarded

    public bool Enabled { get; } = duration > TimeSpan.Zero;

    public BreakerState State => _state;

    /// <summary>Whether an L2 call may go ahead now; when the breaker is open, the one probe is allowed once it is due.</summary>
    public bool AllowCall(out BreakerTransition transition)
    {
        transition = BreakerTransition.None;
        if (!Enabled || _state == BreakerState.Closed)
        {
            // Closed: no lock, so the calls of a healthy L2 do not queue on one. A call let through just as another's
            // failure opens the breaker is one more call in flight at that moment, as if it had started a moment earlier.
            return true;
        }

        lock (_gate)
        {
            switch (_state)
            {
                case BreakerState.Closed:
                    return true;
                case BreakerState.Open or BreakerState.HalfOpen when time.GetUtcNow().UtcTicks >= _openUntil:
                    // Due for a probe; a probe that never reported (its caller gave up) is replaced after another period.
                    transition = _state == BreakerState.Open ? BreakerTransition.HalfOpened : BreakerTransition.None;
                    _state = BreakerState.HalfOpen;
                    _openUntil = time.GetUtcNow().UtcTicks + duration.Ticks;
                    return true;
                default:
                    return false;
            }
        }
    }

    public BreakerTransition OnSuccess()
    {
        if (!Enabled || _state != BreakerState.HalfOpen)
        {
            // Only a half-open breaker changes on success: the lock is taken only then.
            return BreakerTransition.None;
        }

        lock (_gate)
        {
            if (_state == BreakerState.HalfOpen)
            {
                _state = BreakerState.Closed;
                _failures.Clear();
                return BreakerTransition.Closed;
            }

            return BreakerTransition.None;
        }
    }

    public BreakerTransition OnFailure()
    {
        if (!Enabled)
        {
            return BreakerTransition.None;
        }

        lock (_gate)
        {
            long now = time.GetUtcNow().UtcTicks;
            if (_state == BreakerState.HalfOpen)
            {
                Open(now);
                return BreakerTransition.Opened;
            }

            if (_state == BreakerState.Open)
            {
                return BreakerTransition.None; // a call that started before it opened
            }

            _failures.Enqueue(now);
            while (_failures.Count > 0 && now - _failures.Peek() > window.Ticks)
            {
                _failures.Dequeue();
            }

            if (_failures.Count >= threshold)
            {
                Open(now);
                return BreakerTransition.Opened;
            }

            return BreakerTransition.None;
        }
    }

    /// <summary>Opens the breaker at once, whatever the count: the connection itself is known to be lost.</summary>
    public BreakerTransition ForceOpen()
    {
        if (!Enabled)
        {
            return BreakerTransition.None;
        }

        lock (_gate)
        {
            if (_state == BreakerState.Open)
            {
                return BreakerTransition.None;
            }

            Open(time.GetUtcNow().UtcTicks);
            return BreakerTransition.Opened;
        }
    }

    /// <summary>Closes the breaker at once: L2 is known to answer again.</summary>
    public BreakerTransition Reset()
    {
        lock (_gate)
        {
            _failures.Clear();
            if (_state == BreakerState.Closed)
            {
                return BreakerTransition.None;
            }

            _state = BreakerState.Closed;
            return BreakerTransition.Closed;
        }
    }

    private void Open(long now)
    {
        _state = BreakerState.Open;
        _openUntil = now + duration.Ticks;
        _failures.Clear();
    }
}

internal enum BreakerState
{
    Closed,
    Open,
    HalfOpen,
}

internal enum BreakerTransition
{
    None,
    Opened,
    HalfOpened,
    Closed,
}
