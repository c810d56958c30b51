using System.Collections.Concurrent;

namespace CacheGuard.Tests.Support;

/// <summary>An in-process backplane: every subscribed sink but the sender's gets each message, synchronously.</summary>
public sealed class InMemoryBackplane : ICacheBackplane
{
    private readonly ConcurrentDictionary<ICacheInvalidationSink, string> _sinks = new();

    private int _published;

    public int Published => Volatile.Read(ref _published);

    public ValueTask PublishAsync(CacheInvalidation invalidation, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _published);
        foreach (var (sink, cacheName) in _sinks)
        {
            if (cacheName == invalidation.CacheName && !ReferenceEquals(sink, Sender.Value))
            {
                sink.OnInvalidation(invalidation);
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Set by a test around a call, so the sender's own sink is skipped as a real backplane would by instance id.</summary>
    public AsyncLocal<ICacheInvalidationSink?> Sender { get; } = new();

    public IDisposable Subscribe(string cacheName, ICacheInvalidationSink sink)
    {
        _sinks[sink] = cacheName;
        return new Unsubscriber(() => _sinks.TryRemove(sink, out _));
    }

    public void LoseMessages()
    {
        foreach (var sink in _sinks.Keys)
        {
            sink.OnMessagesMayHaveBeenLost();
        }
    }

    private sealed class Unsubscriber(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}

/// <summary>An in-process per-key lock with the IDistributedLoadLock contract; can be made to fail.</summary>
public sealed class InMemoryLoadLock : IDistributedLoadLock
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _held = new();

    public bool Broken { get; set; }

    private int _acquired;
    private int _waiting;

    public int Acquired => Volatile.Read(ref _acquired);

    /// <summary>Gets how many callers wait for a held key's release now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Whether someone holds the lock of <paramref name="key"/>.</summary>
    public bool IsHeld(string key) => _held.ContainsKey(key);

    public ValueTask<IAsyncDisposable?> TryAcquireAsync(string key, CancellationToken cancellationToken)
    {
        if (Broken)
        {
            throw new InvalidOperationException("lock service down");
        }

        var released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_held.TryAdd(key, released))
        {
            return ValueTask.FromResult<IAsyncDisposable?>(null);
        }

        Interlocked.Increment(ref _acquired);
        return ValueTask.FromResult<IAsyncDisposable?>(new Lease(() =>
        {
            _held.TryRemove(key, out _);
            released.SetResult();
        }));
    }

    public async ValueTask<bool> WaitForReleaseAsync(string key, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (!_held.TryGetValue(key, out var released))
        {
            return true;
        }

        Interlocked.Increment(ref _waiting);
        try
        {
            await released.Task.WaitAsync(timeout, cancellationToken);
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

    private sealed class Lease(Action release) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            release();
            return ValueTask.CompletedTask;
        }
    }
}
