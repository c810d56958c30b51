namespace CacheGuard.Internal;

/// <summary>
/// Orders this node's L2 mutations of one key: a turn starts when the previous turn for the key has ended. So a write,
/// its check and its compensation, a removal, a replay or a tag stamp reach L2 in the order they were begun, and an
/// invalidation never races an older write of the same key. Turns for different keys never wait for each other.
/// </summary>
internal sealed class KeyedSequencer
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Turn> _tails = new(StringComparer.Ordinal); // guarded by _gate
    private int _keys; // how many keys have a turn: read without the lock, so an idle sequencer costs readers nothing

    /// <summary>Gets the number of keys with a turn held or waiting: a test hook.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _tails.Count;
            }
        }
    }

    /// <summary>Waits for the key's previous turn to end, then returns this one; dispose it to end it.</summary>
    public ValueTask<Turn> EnterAsync(string key)
    {
        var turn = new Turn(this, key);
        Turn? previous;
        lock (_gate)
        {
            if (!_tails.TryGetValue(key, out previous))
            {
                Interlocked.Increment(ref _keys);
            }

            _tails[key] = turn;
            if (previous is not null)
            {
                previous.Next = turn;
                if (previous.Ended)
                {
                    previous = null; // ended between its own removal check and now: nothing to wait for
                }
                else
                {
                    turn.Started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
        }

        return previous is null ? new ValueTask<Turn>(turn) : WaitAsync(turn);

        static async ValueTask<Turn> WaitAsync(Turn turn)
        {
            await turn.Started!.Task.ConfigureAwait(false);
            return turn;
        }
    }

    /// <summary>
    /// Completes once every turn of <paramref name="key"/> begun so far has ended (the last of them: turns end in order): a read of the key waits for this node's
    /// mutations in progress, so it never sees a value one of them is about to remove again.
    /// </summary>
    public ValueTask WhenIdleAsync(string key)
    {
        if (Volatile.Read(ref _keys) == 0)
        {
            return ValueTask.CompletedTask;
        }

        TaskCompletionSource? idle = null;
        lock (_gate)
        {
            if (_tails.TryGetValue(key, out Turn? tail) && !tail.Ended)
            {
                idle = tail.Idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        return idle is null ? ValueTask.CompletedTask : new ValueTask(idle.Task);
    }

    private void End(Turn turn)
    {
        Turn? next;
        lock (_gate)
        {
            turn.Ended = true;
            next = turn.Next;
            if (next is null && _tails.TryGetValue(turn.Key, out Turn? tail) && ReferenceEquals(tail, turn))
            {
                _tails.Remove(turn.Key);
                Interlocked.Decrement(ref _keys);
            }
        }

        next?.Started?.TrySetResult();
        turn.Idle?.TrySetResult(); // it was the key's last turn when its readers asked: every turn before it has ended too
    }

    /// <summary>One key's turn; ends when disposed.</summary>
    internal sealed class Turn(KeyedSequencer owner, string key) : IDisposable
    {
        public string Key { get; } = key;

        internal TaskCompletionSource? Started; // guarded by the owner's gate until published

        internal Turn? Next; // guarded

        internal bool Ended; // guarded

        internal TaskCompletionSource? Idle; // guarded: completed when this turn ends, for readers that asked while it was the last

        public void Dispose() => owner.End(this);
    }
}
