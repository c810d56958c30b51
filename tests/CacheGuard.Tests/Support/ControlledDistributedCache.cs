using System.Threading.Channels;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Tests.Support;

/// <summary>
/// One node's connection to a shared <see cref="FakeDistributedCache"/> store, whose calls the test can hold and release
/// one at a time, or fail. A held read answers with what the store held when the read entered (as a slow network
/// would); a held write or removal reaches the store only when released. Several views over one store model several
/// nodes, each with its own connection to one L2.
/// </summary>
public sealed class ControlledDistributedCache(FakeDistributedCache store) : IDistributedCache
{
    private readonly Channel<HeldCall> _held = Channel.CreateUnbounded<HeldCall>();

    /// <summary>Gets the store every view shares.</summary>
    public FakeDistributedCache Store => store;

    /// <summary>Gets or sets which reads are held, by L2 key and what the read finds (<see langword="null"/>: a miss); <see langword="null"/> holds none.</summary>
    public Func<string, byte[]?, bool>? HoldReads { get; set; }

    /// <summary>Gets or sets which writes and removals are held, by L2 key and the value written (<see langword="null"/>: a removal); <see langword="null"/> holds none.</summary>
    public Func<string, byte[]?, bool>? HoldWrites { get; set; }

    /// <summary>
    /// Whether a value is an entry (an envelope), as opposed to a miss or a tag's 8-byte invalidation stamp: tests hold
    /// entry calls by this, without depending on how the cache names its L2 keys.
    /// </summary>
    public static bool IsEntry(string l2Key, byte[]? value) => value is { Length: > 16 };

    /// <summary>Gets or sets the exception every call fails with, asynchronously; <see langword="null"/> when healthy.</summary>
    public Func<Exception>? FailWith { get; set; }

    /// <summary>Waits for the next held call.</summary>
    public async Task<HeldCall> NextHeldAsync() =>
        await _held.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);

    public byte[]? Get(string key) => throw new NotSupportedException("CacheGuard must use the async API.");

    public async Task<byte[]?> GetAsync(string key, CancellationToken token = default)
    {
        await FailIfDownAsync().ConfigureAwait(false);
        Func<string, byte[]?, bool>? holdReads = HoldReads;
        byte[]? snapshot = await store.GetAsync(key, CancellationToken.None).ConfigureAwait(false);
        if (holdReads?.Invoke(key, snapshot) == true)
        {
            var call = new HeldCall(HeldCallKind.Read, key, snapshot);
            _held.Writer.TryWrite(call);
            await call.Released.WaitAsync(token).ConfigureAwait(false);
        }

        return snapshot;
    }

    public void Refresh(string key) => throw new NotSupportedException();

    public Task RefreshAsync(string key, CancellationToken token = default) => Task.CompletedTask;

    public void Remove(string key) => throw new NotSupportedException();

    public async Task RemoveAsync(string key, CancellationToken token = default)
    {
        await FailIfDownAsync().ConfigureAwait(false);
        if (HoldWrites?.Invoke(key, null) == true)
        {
            var call = new HeldCall(HeldCallKind.Remove, key, null);
            _held.Writer.TryWrite(call);
            await call.Released.WaitAsync(token).ConfigureAwait(false);
        }

        await store.RemoveAsync(key, CancellationToken.None).ConfigureAwait(false);
    }

    public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => throw new NotSupportedException();

    public async Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        await FailIfDownAsync().ConfigureAwait(false);
        if (HoldWrites?.Invoke(key, value) == true)
        {
            var call = new HeldCall(HeldCallKind.Write, key, value);
            _held.Writer.TryWrite(call);
            await call.Released.WaitAsync(token).ConfigureAwait(false);
        }

        await store.SetAsync(key, value, options, CancellationToken.None).ConfigureAwait(false);
    }

    private async Task FailIfDownAsync()
    {
        if (FailWith is { } fail)
        {
            await Task.Yield();
            throw fail();
        }
    }
}

public enum HeldCallKind
{
    Read,
    Write,
    Remove,
}

/// <summary>One L2 call a <see cref="ControlledDistributedCache"/> holds until the test releases it.</summary>
public sealed class HeldCall(HeldCallKind kind, string key, byte[]? value)
{
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public HeldCallKind Kind => kind;

    /// <summary>Gets the L2 key of the call.</summary>
    public string Key => key;

    /// <summary>Gets what a read will answer (the store's content when it entered), or what a write will store.</summary>
    public byte[]? Value => value;

    internal Task Released => _release.Task;

    public void Release() => _release.TrySetResult();
}
