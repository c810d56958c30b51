using Microsoft.Extensions.Logging;

namespace CacheGuard.Internal;

/// <summary>
/// Values leaving: <c>RemoveAsync</c>, <c>RemoveByTagAsync</c> (<c>"*"</c> included), and what other nodes announce on
/// the backplane. Each supersedes the work in flight on what it invalidates (<see cref="KeyVersions"/>), so the
/// <see cref="Publisher"/> never lets an older value land after it.
/// </summary>
internal sealed class Invalidations(CacheSettings settings, KeyVersions versions, L1Store l1, L2Gateway? l2, TagIndex tags, BackplaneLink backplane, BackgroundWork background, CacheMetrics metrics, ILogger logger)
{
    /// <summary>
    /// Removes a key: supersedes the work in flight and drops L1; then, in the key's sequencer turn (after this node's earlier
    /// writes of the key), removes it from L2 and supersedes again (work that read L2 meanwhile), dropping L1 again; then
    /// tells other nodes.
    /// </summary>
    public async ValueTask RemoveAsync(string key, CancellationToken cancellationToken)
    {
        versions.Invalidate(key, l1, removeFromL1: true, settings.NowTicks);
        if (l2 is not null)
        {
            l2.NoteOwnChange(key, settings.NowTicks);
            using (await l2.Sequencer.EnterAsync(settings.Keys.Entry(key)).ConfigureAwait(false))
            {
                await l2.RemoveAsync(key, cancellationToken).ConfigureAwait(false);
                versions.Invalidate(key, l1, removeFromL1: true, settings.NowTicks);
            }
        }

        await backplane.AnnounceAsync(key, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Invalidates every entry carrying <paramref name="tag"/> (every entry for <c>"*"</c>), here, in L2's stamps, and on other nodes.</summary>
    public ValueTask RemoveByTagAsync(string tag, CancellationToken cancellationToken)
    {
        long now = settings.NowTicks;
        InvalidateTag(tag, now);
        if (l2 is null && !backplane.Enabled)
        {
            return ValueTask.CompletedTask;
        }

        return RecordAsync(tag, now, cancellationToken);
    }

    /// <summary>Applies another node's announcement.</summary>
    public void OnRemote(CacheInvalidation invalidation)
    {
        if (invalidation.Key is { } key)
        {
            // A load of the key running here may have read L2 before the other node's write: it must not land.
            versions.Invalidate(key, l1, removeFromL1: true, settings.NowTicks);
            metrics.BackplaneEviction();
            if (l2 is not null && l2.TakeRecentWrite(key, out long createdTicks))
            {
                background.Track(RemoveOwnWriteAsync(key, createdTicks), key);
            }
        }
        else if (invalidation.Tag is { } tag)
        {
            // The sender's clock is not ours: invalidate everything this node created up to now (never too little).
            InvalidateTag(tag, settings.NowTicks);
            metrics.BackplaneEviction();
        }
    }

    /// <summary>The backplane may have missed messages: nothing in L1 can be trusted, nor any load in flight (L2 can).</summary>
    public void OnMessagesMayHaveBeenLost()
    {
        versions.InvalidateAll(l1);
        Log.LocalCacheCleared(logger, settings.Name);
        l2?.SupersedeQueuedWrites(); // other nodes' changes of those keys may be among the lost messages
    }

    /// <summary>Another node invalidated everything, as learned from the <c>"*"</c> stamp in L2 (no backplane, or a lost message).</summary>
    public void OnRemoteInvalidateAll()
    {
        versions.TagInvalidated();
        versions.InvalidateAll(l1);
        metrics.BackplaneEviction();
        Log.LocalCacheCleared(logger, settings.Name);
    }

    private void InvalidateTag(string tag, long now)
    {
        tags.InvalidateLocally(tag, now);
        versions.TagInvalidated();
        if (tag == TagIndex.AllTag)
        {
            versions.InvalidateAll(l1); // every L1 entry carries "*"; L2 entries are checked against its time when read
        }
    }

    /// <summary>
    /// A load this node stored (or a write it replayed) just before another node's write was announced may have reached L2
    /// after that write and overwritten it; or another node's replayed write, older than this node's, may have reached L2
    /// after it. If L2 holds exactly what this node wrote, or something older, remove it (a miss is never wrong; an older
    /// value is), and announce the key: another node may have read that value from L2 into its L1 meanwhile.
    /// </summary>
    private async Task RemoveOwnWriteAsync(string key, long createdTicks)
    {
        using (await l2!.Sequencer.EnterAsync(settings.Keys.Entry(key)).ConfigureAwait(false))
        {
            long? stored = await l2.ReadCreatedTicksAsync(key).ConfigureAwait(false);
            if (stored is null || stored > createdTicks)
            {
                return; // L2 holds nothing, or something newer, or could not say
            }

            await l2.RemoveAsync(key, CancellationToken.None).ConfigureAwait(false);
        }

        await backplane.AnnounceAsync(key, null, CancellationToken.None).ConfigureAwait(false);
    }

    private async ValueTask RecordAsync(string tag, long now, CancellationToken cancellationToken)
    {
        await tags.WriteStampAsync(tag, now, cancellationToken).ConfigureAwait(false);
        await backplane.AnnounceAsync(null, tag, cancellationToken).ConfigureAwait(false);
    }
}
