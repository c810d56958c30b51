using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Internal;

/// <summary>Tag invalidation stamps: eight bytes (UTC ticks) under a reserved key, written in their own sequencer turn.</summary>
internal sealed partial class L2Gateway
{
    /// <summary>Reads a tag's invalidation stamp: its time, <see cref="long.MinValue"/> when there is none, <see langword="null"/> when L2 could not say.</summary>
    public async ValueTask<long?> ReadStampAsync(string l2Key)
    {
        if (!Allowed())
        {
            return null;
        }

        using var deadline = new L2Deadline(_settings.L2Timeout, _settings.Time, CancellationToken.None);
        using Activity? activity = CacheTelemetry.Start(CacheTelemetry.L2ReadActivity, _settings.Name, l2Key, _settings.KeysInTelemetry);
        try
        {
            byte[]? stamp = await BoundAsync(_l2.GetAsync(l2Key, deadline.Token), deadline.Token).ConfigureAwait(false);
            Succeeded();
            if (stamp is { Length: 8 })
            {
                return BinaryPrimitives.ReadInt64LittleEndian(stamp);
            }

            if (stamp is not null)
            {
                Reject(l2Key, "a tag invalidation entry of the wrong size", null);
            }

            return long.MinValue;
        }
#pragma warning disable CA1031 // L2 could not say: the caller keeps what it knows.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Failed(OperationRead, l2Key, deadline.TimedOut ? null : ex, activity);
            return null;
        }
    }

    /// <summary>Writes a tag's invalidation stamp in its own sequencer turn; a failure queues it for replay (a stamp never moves back).</summary>
    public async ValueTask WriteStampAsync(string l2Key, long ticks, CancellationToken cancellationToken)
    {
        byte[] stamp = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(stamp, ticks);
        var pending = new PendingWrite(PendingKind.Stamp, stamp, _settings.Time.GetUtcNow() + CoalescingCacheOptionsValidator.MaxLifetime, ticks);
        using KeyedSequencer.Turn turn = await Sequencer.EnterAsync(l2Key).ConfigureAwait(false);
        if (!Allowed())
        {
            Defer(l2Key, l2Key, pending);
            return;
        }

        using var deadline = new L2Deadline(_settings.L2Timeout, _settings.Time, cancellationToken);
        using Activity? activity = CacheTelemetry.Start(CacheTelemetry.L2WriteActivity, _settings.Name, l2Key, _settings.KeysInTelemetry);
        try
        {
            var entryOptions = new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = CoalescingCacheOptionsValidator.MaxLifetime };
            await BoundAsync(_l2.SetAsync(l2Key, stamp, entryOptions, deadline.Token), deadline.Token).ConfigureAwait(false);
            Written(l2Key);
        }
        catch (OperationCanceledException) when (deadline.CallerCancelled)
        {
            throw;
        }
        catch (Exception ex)
        {
            Failed(OperationWrite, l2Key, deadline.TimedOut ? null : ex, activity);
            Defer(l2Key, l2Key, pending);
        }
    }
}
