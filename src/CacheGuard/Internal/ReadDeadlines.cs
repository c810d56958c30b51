using System.Threading.Tasks.Sources;

namespace CacheGuard.Internal;

/// <summary>
/// One timer for every L2 read in flight, instead of one per read. A read that the client does not answer at once is
/// watched by a pooled <see cref="Watch"/>: its completion and the deadline race for it, and the first one wins. All
/// reads share one timeout, so their deadlines fall in the order they were watched: pending watches form a list in that
/// order, and the one timer is armed for the head's deadline. A read that completes leaves the list at once; the timer
/// fires at most once per head, expires every watch whose deadline has passed and re-arms for the next.
/// </summary>
/// <remarks>
/// A watch goes back to the pool only once both of its users let go of it: the awaiting reader (after it took the
/// outcome) and the client's call (after it completed). A call that never completes keeps its watch, which the garbage
/// collector then takes; the pool never hands out a watch that something still refers to. The first expired read of a
/// firing continues on the timer's thread and the others on the thread pool, as .NET's own timer queue runs timers.
/// Each race is tagged with the watch's version, so a deadline that fires for a read already answered (and its watch
/// reused) cannot touch the next read.
/// </remarks>
internal sealed class ReadDeadlines : IDisposable
{
    private const int PoolLimit = 256;

    private readonly TimeProvider _time;
    private readonly long _timeoutTicks;
    private readonly Action<Exception> _abandonedCallFailed;
    private readonly Lock _gate = new();
    private readonly Stack<Watch> _pool = new();
    private readonly ITimer _timer;
    private Watch? _head;
    private Watch? _tail;
    private bool _armed; // guarded

    /// <param name="time">The clock deadlines are measured on.</param>
    /// <param name="timeout">How long a read may take.</param>
    /// <param name="abandonedCallFailed">Told about a call that failed after its read had timed out (nobody else observes it).</param>
    public ReadDeadlines(TimeProvider time, TimeSpan timeout, Action<Exception> abandonedCallFailed)
    {
        _time = time;
        _timeoutTicks = Math.Max(1, (long)(timeout.TotalSeconds * time.TimestampFrequency));
        _abandonedCallFailed = abandonedCallFailed;
        _timer = time.CreateTimer(static s => ((ReadDeadlines)s!).Expire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Stops the timer: reads still watched end only with their calls.</summary>
    public void Dispose() => _timer.Dispose();

    /// <summary>Gets how many reads are being watched: a test hook.</summary>
    public int Pending
    {
        get
        {
            lock (_gate)
            {
                int count = 0;
                for (Watch? w = _head; w is not null; w = w.Next)
                {
                    count++;
                }

                return count;
            }
        }
    }

    /// <summary>
    /// The outcome of <paramref name="call"/> within the timeout: its value, its exception, or
    /// <see cref="ReadAnswer.TimedOut"/> once the deadline passed first. Allocates nothing once the pool is warm.
    /// </summary>
    public ValueTask<ReadAnswer> WatchAsync(Task<byte[]?> call)
    {
        Watch watch;
        short version;
        lock (_gate)
        {
            watch = _pool.Count > 0 ? _pool.Pop() : new Watch(this);
            watch.Start(call, _time.GetTimestamp() + _timeoutTicks);
            version = watch.Version;
            Link(watch);
            if (!_armed)
            {
                _armed = true;
                _timer.Change(Span(_timeoutTicks), Timeout.InfiniteTimeSpan);
            }
        }

        watch.Listen();
        return new ValueTask<ReadAnswer>(watch, version);
    }

    /// <summary>The timer fired: every watch whose deadline has passed times out, and the timer is armed for the next.</summary>
    private void Expire()
    {
        List<(Watch Watch, short Version)>? expired = null; // allocated only when something timed out
        lock (_gate)
        {
            long now = _time.GetTimestamp();
            while (_head is { } head && head.Deadline <= now)
            {
                Unlink(head);
                (expired ??= []).Add((head, head.Version));
            }

            _armed = _head is not null;
            if (_head is { } next)
            {
                _timer.Change(Span(next.Deadline - now), Timeout.InfiniteTimeSpan);
            }
        }

        if (expired is null)
        {
            return;
        }

        // Each race is decided here, at the deadline, whatever thread then runs the reader on: oldest first, the first
        // on this thread, the rest on the thread pool. A watch the call won meanwhile may have gone back to the pool and
        // started another read: its version tells, and that read is left alone.
        bool first = true;
        foreach ((Watch watch, short version) in expired)
        {
            if (!watch.Win(version))
            {
                continue;
            }

            if (first)
            {
                first = false;
                watch.AnswerTimedOut();
            }
            else
            {
                ThreadPool.UnsafeQueueUserWorkItem(static w => w.AnswerTimedOut(), watch, preferLocal: false);
            }
        }
    }

    /// <summary>A span of timestamp ticks as a <see cref="TimeSpan"/>, rounded up so that the timer never fires before the deadline.</summary>
    private TimeSpan Span(long timestampTicks) =>
        TimeSpan.FromTicks(Math.Max(0, (long)Math.Ceiling(timestampTicks * (TimeSpan.TicksPerSecond / (double)_time.TimestampFrequency))));

    private void Link(Watch watch)
    {
        watch.Previous = _tail;
        watch.Next = null;
        if (_tail is null)
        {
            _head = watch;
        }
        else
        {
            _tail.Next = watch;
        }

        _tail = watch;
        watch.Linked = true;
    }

    private void Unlink(Watch watch)
    {
        if (watch.Previous is null)
        {
            _head = watch.Next;
        }
        else
        {
            watch.Previous.Next = watch.Next;
        }

        if (watch.Next is null)
        {
            _tail = watch.Previous;
        }
        else
        {
            watch.Next.Previous = watch.Previous;
        }

        watch.Previous = null;
        watch.Next = null;
        watch.Linked = false;
    }

    /// <summary>The call completed before its deadline: it leaves the list (the timer may find a later head when it fires).</summary>
    private void Leave(Watch watch)
    {
        lock (_gate)
        {
            if (watch.Linked)
            {
                Unlink(watch);
            }
        }
    }

    private void Return(Watch watch)
    {
        lock (_gate)
        {
            if (_pool.Count < PoolLimit)
            {
                _pool.Push(watch);
            }
        }
    }

    /// <summary>One read's race between its call and its deadline.</summary>
    private sealed class Watch : IValueTaskSource<ReadAnswer>
    {
        private readonly ReadDeadlines _owner;
        private readonly Action _callCompleted;
        private ManualResetValueTaskSourceCore<ReadAnswer> _core; // continuations run where the race was won
        private Task<byte[]?>? _call;
        private int _race; // the version's race: version * 2 while it runs, + 1 once the call or the deadline won it
        private int _holders; // the reader and the call: the watch is pooled when both let go

        public Watch(ReadDeadlines owner)
        {
            _owner = owner;
            _callCompleted = OnCallCompleted;
        }

        public long Deadline { get; private set; }

        public short Version => _core.Version;

        // Guarded by the owner's gate.
        public Watch? Previous { get; set; }

        public Watch? Next { get; set; }

        public bool Linked { get; set; }

        public void Start(Task<byte[]?> call, long deadline)
        {
            _core.Reset();
            _call = call;
            Deadline = deadline;
            Volatile.Write(ref _race, _core.Version * 2);
            _holders = 2;
        }

        /// <summary>Hears the call's completion; registered after the watch is linked. A call that is already done wins at once, here.</summary>
        public void Listen()
        {
            if (_call!.IsCompleted)
            {
                OnCallCompleted();
            }
            else
            {
                _call.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_callCompleted);
            }
        }

        /// <summary>Decides the race of the read <paramref name="version"/>; false when it was decided already (or the watch has moved on to another read).</summary>
        public bool Win(short version) => Interlocked.CompareExchange(ref _race, (version * 2) + 1, version * 2) == version * 2;

        /// <summary>Tells the reader its deadline won; only after <see cref="Win"/>, which keeps the watch out of the pool until the reader has read this.</summary>
        public void AnswerTimedOut() => _core.SetResult(ReadAnswer.TimedOut);

        public ReadAnswer GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                Release();
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);

        private void OnCallCompleted()
        {
            Task<byte[]?> call = _call!; // the watch is not pooled before this runs: this is the current read's call
            if (Win(_core.Version))
            {
                _owner.Leave(this);
                if (call.IsCompletedSuccessfully)
                {
                    _core.SetResult(new ReadAnswer(call.Result));
                }
                else
                {
                    _core.SetException(call.Exception?.InnerException ?? new TaskCanceledException(call));
                }
            }
            else if (call.Exception is { } late)
            {
                _owner._abandonedCallFailed(late.InnerException ?? late); // the reader has gone: this is where the failure is seen
            }

            Release();
        }

        private void Release()
        {
            if (Interlocked.Decrement(ref _holders) == 0)
            {
                _call = null;
                _owner.Return(this);
            }
        }
    }
}

/// <summary>An L2 read's outcome within its deadline: the bytes (<see langword="null"/>: no entry), or that it timed out.</summary>
internal readonly struct ReadAnswer(byte[]? bytes, bool timedOut = false)
{
    public static ReadAnswer TimedOut => new(null, timedOut: true);

    public byte[]? Bytes { get; } = bytes;

    public bool IsTimedOut { get; } = timedOut;
}
