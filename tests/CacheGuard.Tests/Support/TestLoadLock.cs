using System.Collections.Concurrent;

namespace CacheGuard.Tests.Support;

/// <summary>
/// An <see cref="IDistributedLoadLock"/> whose state the test can see and steer: which keys were locked, how many locks
/// this process holds, who waits; "another node" can hold every key; and, given a key space, the lock occupies its key
/// there as Redis's <c>SET key token NX</c> would (taken only if the key is free; released only if it still holds the
/// token), so collisions between lock keys and cache keys become visible. Waits run on the fake clock.
/// </summary>
public sealed class TestLoadLock(TimeProvider time, FakeDistributedCache? keySpace = null) : IDistributedLoadLock
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _held = new(StringComparer.Ordinal);
    private readonly FakeDistributedCache? _keySpace = keySpace;
    private readonly Lock _gate = new();
    private TaskCompletionSource? _elsewhere;
    private int _acquired;
    private int _manyCalls;
    private int _waiting;
    private int _waits;

    /// <summary>Gets every key passed to the lock, in order.</summary>
    public ConcurrentQueue<string> Keys { get; } = new();

    /// <summary>Gets how many locks were taken.</summary>
    public int Acquired => Volatile.Read(ref _acquired);

    /// <summary>Gets how many locks this process holds now.</summary>
    public int Held => _held.Count;

    /// <summary>Gets how many <see cref="IDistributedLoadLock.TryAcquireManyAsync"/> calls were made.</summary>
    public int ManyCalls => Volatile.Read(ref _manyCalls);

    /// <summary>Gets how many callers wait for a release now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Gets how many waits for a release were started.</summary>
    public int Waits => Volatile.Read(ref _waits);

    /// <summary>From now on, every key counts as held by another node, until <see cref="ReleaseElsewhere"/>.</summary>
    public void HoldElsewhere()
    {
        lock (_gate)
        {
            _elsewhere ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>The other node releases every key it held.</summary>
    public void ReleaseElsewhere()
    {
        TaskCompletionSource? released;
        lock (_gate)
        {
            released = _elsewhere;
            _elsewhere = null;
        }

        released?.TrySetResult();
    }

    public ValueTask<IAsyncDisposable?> TryAcquireAsync(string key, CancellationToken cancellationToken)
    {
        Keys.Enqueue(key);
        lock (_gate)
        {
            if (_elsewhere is not null)
            {
                return ValueTask.FromResult<IAsyncDisposable?>(null);
            }
        }

        byte[] token = Guid.NewGuid().ToByteArray();
        if (_keySpace is not null)
        {
            lock (_keySpace)
            {
                if (_keySpace.Raw(key) is not null)
                {
                    return ValueTask.FromResult<IAsyncDisposable?>(null); // SET NX: the key is taken
                }

                _keySpace.PutRaw(key, token);
            }
        }

        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_held.TryAdd(key, released))
        {
            return ValueTask.FromResult<IAsyncDisposable?>(null);
        }

        Interlocked.Increment(ref _acquired);
        return ValueTask.FromResult<IAsyncDisposable?>(new Lease(this, key, token, released));
    }

    public async ValueTask<IAsyncDisposable?[]> TryAcquireManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _manyCalls);
        var leases = new IAsyncDisposable?[keys.Count];
        for (int i = 0; i < leases.Length; i++)
        {
            leases[i] = await TryAcquireAsync(keys[i], cancellationToken).ConfigureAwait(false);
        }

        return leases;
    }

    public async ValueTask<bool> WaitForReleaseAsync(string key, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waits);
        Interlocked.Increment(ref _waiting);
        try
        {
            Task released;
            lock (_gate)
            {
                released = _elsewhere?.Task
                    ?? (_held.TryGetValue(key, out TaskCompletionSource? mine) ? mine.Task : null)
                    ?? (_keySpace?.Raw(key) is not null ? new TaskCompletionSource().Task : Task.CompletedTask);
            }

            await released.WaitAsync(timeout, time, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    private sealed class Lease(TestLoadLock owner, string key, byte[] token, TaskCompletionSource released) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            if (owner._held.TryRemove(new KeyValuePair<string, TaskCompletionSource>(key, released)))
            {
                if (owner._keySpace is { } space)
                {
                    lock (space)
                    {
                        if (space.Raw(key) is { } current && current.AsSpan().SequenceEqual(token))
                        {
                            space.RemoveRaw(key); // only our own token: compare-and-delete
                        }
                    }
                }

                released.TrySetResult();
            }

            return ValueTask.CompletedTask;
        }
    }
}
