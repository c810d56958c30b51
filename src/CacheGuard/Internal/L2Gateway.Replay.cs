using System.Buffers.Binary;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Internal;

/// <summary>
/// The replay queue: writes and removals L2 did not take wait here, the latest per key, and are replayed once L2 answers
/// again, each only if L2 holds nothing newer. A queued entry write becomes a removal when another node's write of the
/// key is announced, or when the backplane may have lost messages.
/// </summary>
internal sealed partial class L2Gateway
{
    /// <summary>
    /// Keeps a write or removal L2 did not take, for replay; the latest per key wins. Returns <see langword="false"/> when
    /// the queue is full and the key was dropped: no node may then keep the value (tag stamps are always kept).
    /// </summary>
    private bool Defer(string l2Key, string key, PendingWrite write)
    {
        if (write.Kind != PendingKind.Stamp && _pending.Count >= _settings.MaxPendingWrites && !_pending.ContainsKey(l2Key))
        {
            Log.PendingWriteDropped(_logger, _settings.Name, _settings.LogKey(key));
            PendingWriteDropped?.Invoke(key);
            return false;
        }

        _pending.Set(l2Key, write with { Key = key });
        return true;
    }

    /// <summary>How many keys a replay writes at once: after an outage hundreds may wait, and each key's reads here are misses until its write lands.</summary>
    private const int ReplayConcurrency = 16;

    /// <summary>
    /// Replays what is queued, <see cref="ReplayConcurrency"/> keys at a time, each in its key's sequencer turn; stops
    /// starting more at the first failure (what is left stays queued for the next success).
    /// </summary>
    private async Task ReplayAsync()
    {
        var run = new ReplayRun([.. _pending.Select(static pending => pending.Key)]);
        try
        {
            var workers = new Task[Math.Min(ReplayConcurrency, run.Keys.Length)];
            for (int i = 0; i < workers.Length; i++)
            {
                workers[i] = ReplayWorkerAsync(run);
            }

            await Task.WhenAll(workers).ConfigureAwait(false);
        }
        finally
        {
            if (run.Replayed > 0)
            {
                Log.PendingWritesReplayed(_logger, _settings.Name, run.Replayed);
            }

            Volatile.Write(ref _replaying, 0);
        }
    }

    private async Task ReplayWorkerAsync(ReplayRun run)
    {
        while (Volatile.Read(ref run.Stopped) == 0)
        {
            int index = Interlocked.Increment(ref run.Next);
            if (index >= run.Keys.Length)
            {
                return;
            }

            if (!Allowed())
            {
                Volatile.Write(ref run.Stopped, 1);
                return;
            }

            string l2Key = run.Keys[index];
            using KeyedSequencer.Turn turn = await Sequencer.EnterAsync(l2Key).ConfigureAwait(false);

            // The key's latest queued write (a write that reached L2 meanwhile has taken it off the queue). It stays
            // queued until it has landed: until then every read of the key here is a miss, as L2's copy is older.
            if (!_pending.TryGetValue(l2Key, out PendingWrite? write))
            {
                continue;
            }

            try
            {
                bool wrote = await ReplayOneAsync(l2Key, write).ConfigureAwait(false);
                _pending.TryRemove(new KeyValuePair<string, PendingWrite>(l2Key, write)); // unless superseded meanwhile
                if (wrote)
                {
                    Interlocked.Increment(ref run.Replayed);
                    if (write.Kind == PendingKind.Entry)
                    {
                        // Another node may have stored a newer load of the key between the check and the write:
                        // announced, it removes the replayed value again if that is older than its own.
                        EntryReplayed?.Invoke(write.Key);
                    }
                }

                Report(_breaker.OnSuccess());
            }
#pragma warning disable CA1031 // Still failing: it stays queued; stop until the next success.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _metrics.L2Error("replay", ex is OperationCanceledException ? "timeout" : "exception");
                Report(_breaker.OnFailure());
                Volatile.Write(ref run.Stopped, 1);
                return;
            }
        }
    }

    /// <summary>One replay: the keys queued when it began, the next one to take, and how it went.</summary>
    private sealed class ReplayRun(string[] keys)
    {
        public readonly string[] Keys = keys;
        public int Next = -1;
        public int Stopped;
        public int Replayed;
    }

    /// <summary>
    /// The backplane may have lost other nodes' announcements: any of them may have written or removed a key this node has
    /// a write of queued, later than it. Each queued write becomes a queued removal (created now): a removal is never
    /// wrong, and it is not replayed over anything newer. Returns how many were turned.
    /// </summary>
    public int SupersedeQueuedWrites()
    {
        int turned = 0;
        foreach (KeyValuePair<string, PendingWrite> pair in _pending)
        {
            if (TurnIntoRemoval(pair.Key, pair.Value))
            {
                turned++;
            }
        }

        if (turned > 0)
        {
            Log.PendingWritesSuperseded(_logger, _settings.Name, turned);
        }

        return turned;
    }

    /// <summary>
    /// Replays one write, unless L2 now holds something newer (written by another node meanwhile). Returns whether it wrote.
    /// A key holding another kind of data (the server refuses it) holds nothing newer: it is removed and written.
    /// </summary>
    private async Task<bool> ReplayOneAsync(string l2Key, PendingWrite write)
    {
        using var deadline = new L2Deadline(_settings.L2Timeout, _settings.Time, CancellationToken.None);
        byte[]? current;
        try
        {
            current = await BoundAsync(_l2.GetAsync(l2Key, deadline.Token), deadline.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (!deadline.TimedOut && IsKeyError(ex))
        {
            current = null;
        }

        if (current is not null && IsNewer(current, write))
        {
            return false;
        }

        byte[] value;
        DistributedCacheEntryOptions entryOptions;
        if (write.Kind == PendingKind.Removal)
        {
            value = RemovalMark(write.CreatedTicks, out entryOptions);
        }
        else
        {
            if (write.Kind == PendingKind.Entry)
            {
                NoteRecentWrite(write.Key, write.CreatedTicks); // another node's write announced meanwhile may be older than L2 now says
            }

            TimeSpan left = write.Expires - _settings.Time.GetUtcNow();
            if (left <= TimeSpan.Zero)
            {
                return false; // expired while waiting: nothing to write
            }

            value = write.Value!;
            entryOptions = new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = left };
        }

        try
        {
            await BoundAsync(_l2.SetAsync(l2Key, value, entryOptions, deadline.Token), deadline.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (!deadline.TimedOut && IsKeyError(ex))
        {
            if (!await RepairAsync(l2Key, value, entryOptions).ConfigureAwait(false))
            {
                throw;
            }
        }

        return true;
    }

    /// <summary>
    /// Turns a queued entry write into a queued removal made now, unless it changed meanwhile: a removal is never wrong,
    /// and a replay never puts it over anything newer. Returns whether it turned.
    /// </summary>
    private bool TurnIntoRemoval(string l2Key, PendingWrite queued) =>
        queued.Kind == PendingKind.Entry && _pending.TryUpdate(l2Key, RemovalNow() with { Key = queued.Key }, queued);

    /// <summary>A removal made now, to queue.</summary>
    private PendingWrite RemovalNow() => new(PendingKind.Removal, null, DateTimeOffset.MaxValue, _settings.NowTicks);

    /// <summary>Whether what L2 holds was created after the queued write or removal (a stamp: is at least as late).</summary>
    private static bool IsNewer(byte[] current, PendingWrite write)
    {
        if (write.Kind == PendingKind.Stamp)
        {
            return current.Length == 8 && BinaryPrimitives.ReadInt64LittleEndian(current) >= write.CreatedTicks;
        }

        return Envelope.TryRead(current, out EnvelopeHeader header, out _, out _) == EnvelopeStatus.Ok && header.CreatedTicks > write.CreatedTicks;
    }

    private enum PendingKind
    {
        Entry,
        Removal,
        Stamp,
    }

    private readonly record struct RecentWrite(long WrittenAt, long CreatedTicks);

    /// <summary>A write or removal waiting for replay, with when its data was created (a removal: when it was asked for).</summary>
    private sealed record PendingWrite(PendingKind Kind, byte[]? Value, DateTimeOffset Expires, long CreatedTicks)
    {
        /// <summary>Gets the cache key (for an entry; the L2 key for a stamp).</summary>
        public string Key { get; init; } = string.Empty;
    }
}
