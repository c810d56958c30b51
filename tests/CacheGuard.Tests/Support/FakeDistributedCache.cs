using System.Collections.Concurrent;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Tests.Support;

public enum L2Fault
{
    None,
    ThrowSynchronously,
    ThrowAsynchronously,
    Hang,
    ReturnGarbage,
}

/// <summary>An in-process L2 that counts calls, remembers entry options, and can fail on demand.</summary>
public sealed class FakeDistributedCache(FakeTimeProvider? time = null) : IDistributedCache
{
    private readonly ConcurrentDictionary<string, (byte[] Value, DateTimeOffset? Expires)> _entries = new(StringComparer.Ordinal);
    private int _gets;
    private int _allGets;
    private int _sets;
    private int _removes;

    public L2Fault ReadFault { get; set; }

    public L2Fault WriteFault { get; set; }

    /// <summary>Gets the number of reads of cache entries; reads of CacheGuard's own keys (tag stamps) are not counted.</summary>
    public int Gets => Volatile.Read(ref _gets);

    /// <summary>Gets the number of reads of every key, CacheGuard's own (tag stamps) included.</summary>
    public int AllGets => Volatile.Read(ref _allGets);

    public int Sets => Volatile.Read(ref _sets);

    public int Removes => Volatile.Read(ref _removes);

    /// <summary>Completes when a read has entered the cache (useful with <see cref="L2Fault.Hang"/>).</summary>
    public TaskCompletionSource ReadEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource WriteEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ConcurrentDictionary<string, DistributedCacheEntryOptions> LastOptions { get; } = new();

    /// <summary>Runs inside every SetAsync before the value is stored.</summary>
    public Action<string>? OnSet { get; set; }

    public IReadOnlyCollection<string> Keys => _entries.Keys.ToArray();

    public byte[]? Raw(string key) => _entries.TryGetValue(key, out var e) ? e.Value : null;

    public void PutRaw(string key, byte[] value) => _entries[key] = (value, null);

    /// <summary>Removes an entry without counting a call (as another client of the same server would).</summary>
    public void RemoveRaw(string key) => _entries.TryRemove(key, out _);

    public byte[]? Get(string key) => throw new NotSupportedException("CacheGuard must use the async API.");

    /// <summary>When set, every read waits for this gate before answering.</summary>
    public TaskCompletionSource? ReadGate { get; set; }

    public async Task<byte[]?> GetAsync(string key, CancellationToken token = default)
    {
        Interlocked.Increment(ref _allGets);
        if (!key.Contains("__cacheguard:", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _gets);
        }

        ReadEntered.TrySetResult();
        if (ReadGate is { } gate)
        {
            await gate.Task.ConfigureAwait(false);
        }

        switch (ReadFault)
        {
            case L2Fault.ThrowSynchronously:
                throw new InvalidOperationException("L2 read failed (synchronously).");
            case L2Fault.ThrowAsynchronously:
                await Task.Yield();
                throw new InvalidOperationException("L2 read failed (asynchronously).");
            case L2Fault.Hang:
                await new TaskCompletionSource().Task.ConfigureAwait(false); // never completes, ignores the token
                return null;
            case L2Fault.ReturnGarbage:
                return [0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3];
        }

        if (_entries.TryGetValue(key, out var entry) && (entry.Expires is null || time is null || entry.Expires > time.GetUtcNow()))
        {
            return entry.Value;
        }

        return null;
    }

    public void Refresh(string key) => throw new NotSupportedException();

    public Task RefreshAsync(string key, CancellationToken token = default) => Task.CompletedTask;

    public void Remove(string key) => throw new NotSupportedException();

    public Task RemoveAsync(string key, CancellationToken token = default)
    {
        Interlocked.Increment(ref _removes);
        if (WriteFault == L2Fault.ThrowSynchronously)
        {
            throw new InvalidOperationException("L2 remove failed.");
        }

        _entries.TryRemove(key, out _);
        return Task.CompletedTask;
    }

    public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => throw new NotSupportedException();

    public async Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        Interlocked.Increment(ref _sets);
        WriteEntered.TrySetResult();
        switch (WriteFault)
        {
            case L2Fault.ThrowSynchronously:
                throw new InvalidOperationException("L2 write failed (synchronously).");
            case L2Fault.ThrowAsynchronously:
                await Task.Yield();
                throw new InvalidOperationException("L2 write failed (asynchronously).");
            case L2Fault.Hang:
                await new TaskCompletionSource().Task.ConfigureAwait(false);
                return;
        }

        OnSet?.Invoke(key);
        LastOptions[key] = options;
        DateTimeOffset? expires = options.AbsoluteExpirationRelativeToNow is { } rel && time is not null ? time.GetUtcNow() + rel : null;
        _entries[key] = (value, expires);
    }
}
