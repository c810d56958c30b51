using System.Buffers;
using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Tests.Support;

/// <summary>
/// An <see cref="IBufferDistributedCache"/> that can hold calls, the way a client holds the caller's buffer while it
/// waits for the network, and then checks that the buffer is still the caller's. A held write copies the
/// <see cref="ReadOnlySequence{T}"/> it was given on entry and reads it again when released; a held read takes its
/// destination memory on entry, marks it, and checks the mark when released, before writing into it. If the cache handed
/// either buffer back to the pool meanwhile, another renter's data shows up there: the call records it as invalid.
/// Held calls ignore cancellation, as a client that has already queued the bytes would.
/// </summary>
public sealed class BufferDistributedCache : IBufferDistributedCache
{
    private const byte Mark = 0x5A;
    private readonly ConcurrentDictionary<string, byte[]> _entries = new(StringComparer.Ordinal);
    private readonly Channel<HeldBufferCall> _held = Channel.CreateUnbounded<HeldBufferCall>();

    /// <summary>Gets or sets which reads are held, by the stored bytes they will answer with.</summary>
    public Func<byte[], bool>? HoldReads { get; set; }

    /// <summary>Gets or sets which writes are held, by the bytes written.</summary>
    public Func<byte[], bool>? HoldWrites { get; set; }

    public IReadOnlyCollection<string> Keys => _entries.Keys.ToArray();

    public async Task<HeldBufferCall> NextHeldAsync() =>
        await _held.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);

    public async ValueTask<bool> TryGetAsync(string key, IBufferWriter<byte> destination, CancellationToken token = default)
    {
        if (!_entries.TryGetValue(key, out byte[]? data))
        {
            return false;
        }

        if (HoldReads?.Invoke(data) != true)
        {
            destination.Write(data);
            return true;
        }

        Memory<byte> target = destination.GetMemory(data.Length)[..data.Length];
        target.Span.Fill(Mark);
        var call = new HeldBufferCall(key);
        _held.Writer.TryWrite(call);
        await call.Released.ConfigureAwait(false);

        bool valid = !target.Span.ContainsAnyExcept(Mark);
        call.Finish(valid);
        data.CopyTo(target);
        destination.Advance(data.Length);
        return true;
    }

    public async ValueTask SetAsync(string key, ReadOnlySequence<byte> value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        byte[] atEntry = value.ToArray();
        if (HoldWrites?.Invoke(atEntry) == true)
        {
            var call = new HeldBufferCall(key);
            _held.Writer.TryWrite(call);
            await call.Released.ConfigureAwait(false);
            byte[] atSend = value.ToArray();
            call.Finish(atSend.AsSpan().SequenceEqual(atEntry));
            _entries[key] = atSend;
            return;
        }

        _entries[key] = atEntry;
    }

    public bool TryGet(string key, IBufferWriter<byte> destination) => throw new NotSupportedException("CacheGuard must use the async API.");

    public void Set(string key, ReadOnlySequence<byte> value, DistributedCacheEntryOptions options) => throw new NotSupportedException("CacheGuard must use the async API.");

    public byte[]? Get(string key) => throw new NotSupportedException("CacheGuard must use the async API.");

    public Task<byte[]?> GetAsync(string key, CancellationToken token = default) =>
        Task.FromResult(_entries.TryGetValue(key, out byte[]? data) ? data.ToArray() : null);

    public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => throw new NotSupportedException("CacheGuard must use the async API.");

    public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        _entries[key] = value.ToArray();
        return Task.CompletedTask;
    }

    public void Refresh(string key) => throw new NotSupportedException();

    public Task RefreshAsync(string key, CancellationToken token = default) => Task.CompletedTask;

    public void Remove(string key) => throw new NotSupportedException();

    public Task RemoveAsync(string key, CancellationToken token = default)
    {
        _entries.TryRemove(key, out _);
        return Task.CompletedTask;
    }
}

/// <summary>A call a <see cref="BufferDistributedCache"/> holds; says, once released, whether its buffer was still the caller's.</summary>
public sealed class HeldBufferCall(string key)
{
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<bool> _valid = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Key => key;

    /// <summary>Gets whether the buffer still held the caller's data (write) or nobody else's (read) when the call used it.</summary>
    public Task<bool> BufferWasValid => _valid.Task;

    internal Task Released => _release.Task;

    public void Release() => _release.TrySetResult();

    internal void Finish(bool valid) => _valid.TrySetResult(valid);
}
