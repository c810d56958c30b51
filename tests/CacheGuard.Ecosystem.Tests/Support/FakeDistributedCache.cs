using System.Collections.Concurrent;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Ecosystem.Tests.Support;

/// <summary>An in-memory L2 that counts its calls and can be told to fail; it ignores expiry (tests do not need it).</summary>
public sealed class FakeDistributedCache : IDistributedCache
{
    private readonly ConcurrentDictionary<string, byte[]> _data = new(StringComparer.Ordinal);
    private int _gets;
    private int _sets;
    private int _removes;

    /// <summary>Gets the number of reads of cache entries; reads of CacheGuard's own keys (tag stamps) are not counted.</summary>
    public int Gets => Volatile.Read(ref _gets);

    public int Sets => Volatile.Read(ref _sets);

    public int Removes => Volatile.Read(ref _removes);

    /// <summary>Gets or sets whether every call throws.</summary>
    public bool Fail { get; set; }

    /// <summary>Gets the keys of the entries held (CacheGuard's own keys, such as tag stamps, left out).</summary>
    public IEnumerable<string> Keys => _data.Keys.Where(k => !k.StartsWith("__cacheguard:tag:", StringComparison.Ordinal));

    public byte[]? Get(string key) => throw new NotSupportedException("CacheGuard calls the async API.");

    public async Task<byte[]?> GetAsync(string key, CancellationToken token = default)
    {
        if (!key.Contains("__cacheguard:", StringComparison.Ordinal))
        {
            Interlocked.Increment(ref _gets);
        }

        await Task.Yield();
        ThrowIfFailing();
        return _data.TryGetValue(key, out byte[]? value) ? value : null;
    }

    public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => throw new NotSupportedException("CacheGuard calls the async API.");

    public async Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        Interlocked.Increment(ref _sets);
        await Task.Yield();
        ThrowIfFailing();
        _data[key] = value;
    }

    public void Refresh(string key) => throw new NotSupportedException();

    public Task RefreshAsync(string key, CancellationToken token = default) => throw new NotSupportedException();

    public void Remove(string key) => throw new NotSupportedException("CacheGuard calls the async API.");

    public async Task RemoveAsync(string key, CancellationToken token = default)
    {
        Interlocked.Increment(ref _removes);
        await Task.Yield();
        ThrowIfFailing();
        _data.TryRemove(key, out _);
    }

    private void ThrowIfFailing()
    {
        if (Fail)
        {
            throw new InvalidOperationException("L2 is down (a test fault).");
        }
    }
}
