namespace CacheGuard.Internal;

/// <summary>The L2 gateway's batched reads (<c>GetOrLoadManyAsync</c>): one call for many keys where the L2 supports it.</summary>
internal sealed partial class L2Gateway
{
    /// <summary>Reads many entries in one batched call when the L2 (or a registered reader) supports it; otherwise concurrently.</summary>
    public async ValueTask<CacheItem<T>?[]> ReadManyAsync<T>(IReadOnlyList<string> keys)
    {
        var items = new CacheItem<T>?[keys.Count];
        Interlocked.Increment(ref _batchedReads);
        if (_batch is null)
        {
            // The reads go out together: a pipelining client sends them in one write.
            var reads = new Task<CacheItem<T>?>[keys.Count];
            for (int i = 0; i < reads.Length; i++)
            {
                reads[i] = ReadAsync<T>(keys[i]).AsTask();
            }

            return await Task.WhenAll(reads).ConfigureAwait(false);
        }

        if (!Allowed())
        {
            return items;
        }

        var l2Keys = new string[keys.Count];
        for (int i = 0; i < l2Keys.Length; i++)
        {
            l2Keys[i] = _settings.Keys.Entry(keys[i]);
        }

        // A key with a write of this node's queued when the read goes out is a miss even if the write lands before the
        // answer comes back: the answer may predate it.
        bool[]? queued = null;
        if (_pending.MayHaveEntries)
        {
            for (int i = 0; i < l2Keys.Length; i++)
            {
                if (HasPending(l2Keys[i]))
                {
                    (queued ??= new bool[l2Keys.Length])[i] = true;
                }
            }
        }

        using var deadline = new L2Deadline(_settings.L2Timeout, _settings.Time, CancellationToken.None);
        try
        {
            ValueTask<byte[]?[]> pending = _batch.GetManyAsync(l2Keys, deadline.Token);
            byte[]?[] payloads = pending.IsCompletedSuccessfully ? pending.Result : await BoundAsync(pending.AsTask(), deadline.Token).ConfigureAwait(false);
            Succeeded();
            for (int i = 0; i < items.Length && i < payloads.Length; i++)
            {
                items[i] = payloads[i] is { } payload && queued?[i] != true && !HasPending(l2Keys[i]) ? OlderThanOwnChange(keys[i], Decode<T>(keys[i], payload)) : null;
            }
        }
#pragma warning disable CA1031 // An L2 failure is a miss for every key of the batch.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Failed(OperationRead, "(batch)", deadline.TimedOut ? null : ex, null);
        }

        return items;
    }
}
