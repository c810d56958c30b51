using System.Diagnostics;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Internal;

/// <summary>
/// Tag invalidation without scanning: <c>RemoveByTagAsync(tag)</c> records "every entry with this tag created at or
/// before now is invalid", locally and in L2 (one small entry per tag). An entry is checked against the invalidation
/// times of its own tags: on an L1 hit (tagged entries only) and when read from L2. Other nodes learn of an
/// invalidation by re-reading a tag's time from L2 at most once per
/// <see cref="CoalescingCacheOptions.TagCheckInterval"/>; until they have, their tagged L1 hits take the slow path.
/// </summary>
internal sealed partial class DefaultCoalescingCache
{
    private const string TagKeyPrefix = "__cacheguard:tag:";

    /// <summary>The tag every entry carries implicitly: <c>RemoveByTagAsync("*")</c> invalidates everything, as in HybridCache.</summary>
    internal const string AllTag = "*";

    private static readonly string[] AllTags = [AllTag];
    private readonly ConcurrentDictionary<string, TagState> _tags = new(StringComparer.Ordinal);
    private readonly FlightTable<string> _tagReads = new(StringComparer.Ordinal);

    public ValueTask RemoveByTagAsync(string tag, CancellationToken cancellationToken = default)
    {
        CacheEntryOptions.ValidateTag(tag, nameof(tag));
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        long now = _time.GetUtcNow().UtcTicks;
        TagState state = _tags.GetOrAdd(tag, static _ => new TagState());
        state.Record(now, now);
        if (tag == AllTag)
        {
            _l1.Clear(); // every L1 entry carries "*"; L2 entries are checked against it when read
        }

        if (_l2 is null && _backplane is null)
        {
            return ValueTask.CompletedTask;
        }

        return RecordAsync(this, tag, now, cancellationToken);

        static async ValueTask RecordAsync(DefaultCoalescingCache self, string tag, long now, CancellationToken cancellationToken)
        {
            if (self._l2 is not null)
            {
                byte[] stamp = new byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(stamp, now);
                await self.WriteRawL2Async(self.TagKey(tag), stamp, CoalescingCacheOptionsValidator.MaxLifetime, cancellationToken).ConfigureAwait(false);
            }

            await self.PublishAsync(null, tag, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Whether an item read from L2 survives tag invalidation: its own tags (re-read from L2 when this node's knowledge
    /// is older than the check interval) and an invalidate-all this node knows of.
    /// </summary>
    private async ValueTask<bool> SurvivesInvalidationAsync(CacheItem item)
    {
        if (item.Tags is { } tags)
        {
            await RefreshTagsAsync(tags).ConfigureAwait(false);
            if (!TagsAllow(item.CreatedTicks, tags, requireCurrentKnowledge: false))
            {
                return false;
            }
        }

        return _tags.IsEmpty || TagsAllow(item.CreatedTicks, AllTags, requireCurrentKnowledge: false);
    }

    /// <summary>
    /// Whether none of <paramref name="tags"/> was invalidated at or after <paramref name="createdTicks"/>. With an L2,
    /// knowledge of a tag older than the check interval counts as "don't know" when <paramref name="requireCurrentKnowledge"/>.
    /// </summary>
    private bool TagsAllow(long createdTicks, string[] tags, bool requireCurrentKnowledge)
    {
        long now = _l2 is not null && requireCurrentKnowledge ? _time.GetUtcNow().UtcTicks : 0;
        foreach (string tag in tags)
        {
            if (!_tags.TryGetValue(tag, out TagState? state))
            {
                if (_l2 is not null && requireCurrentKnowledge)
                {
                    return false; // never checked: ask L2 first
                }

                continue;
            }

            if (state.InvalidatedTicks >= createdTicks)
            {
                return false;
            }

            if (requireCurrentKnowledge && _l2 is not null && now - state.CheckedTicks >= _tagCheckInterval.Ticks)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Brings this node's knowledge of <paramref name="tags"/> up to date from L2 (one coalesced read per tag).</summary>
    private async ValueTask RefreshTagsAsync(string[] tags)
    {
        if (_l2 is null)
        {
            return;
        }

        long now = _time.GetUtcNow().UtcTicks;
        foreach (string tag in tags)
        {
            if (_tags.TryGetValue(tag, out TagState? known) && now - known.CheckedTicks < _tagCheckInterval.Ticks)
            {
                continue;
            }

            Flight<string, long>? flight = _tagReads.JoinOrStart<long>(tag, cancellable: false, out bool started, out _);
            if (!started)
            {
                await flight!.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            try
            {
                long invalidated = await ReadTagAsync(tag).ConfigureAwait(false);
                _tags.GetOrAdd(tag, static _ => new TagState()).Record(invalidated, _time.GetUtcNow().UtcTicks);
                flight!.Complete(invalidated);
            }
            catch (Exception ex)
            {
                flight!.Fail(ex);
                throw;
            }
        }
    }

    private async ValueTask<long> ReadTagAsync(string tag)
    {
        if (!L2Allowed())
        {
            return _tags.TryGetValue(tag, out TagState? local) ? local.InvalidatedTicks : long.MinValue;
        }

        using var deadline = new L2Deadline(_l2Timeout, _time, CancellationToken.None);
        using Activity? activity = CacheTelemetry.Start(CacheTelemetry.L2ReadActivity, _name, TagKey(tag), _keysInTelemetry);
        try
        {
            byte[]? stamp = await BoundAsync(_l2!.GetAsync(TagKey(tag), deadline.Token), deadline.Token).ConfigureAwait(false);
            L2Succeeded();
            if (stamp is { Length: 8 })
            {
                return BinaryPrimitives.ReadInt64LittleEndian(stamp);
            }

            if (stamp is not null)
            {
                Reject(TagKey(tag), "a tag invalidation entry of the wrong size", null);
            }

            return long.MinValue;
        }
        catch (OperationCanceledException) when (deadline.TimedOut)
        {
            ReportL2Failure(OperationRead, TagKey(tag), null, activity);
        }
        catch (Exception ex)
        {
            ReportL2Failure(OperationRead, TagKey(tag), ex, activity);
        }

        // L2 could not say: keep what this node knows (its own invalidations), and try again next interval.
        return _tags.TryGetValue(tag, out TagState? known) ? known.InvalidatedTicks : long.MinValue;
    }

    private async ValueTask WriteRawL2Async(string l2Key, byte[] value, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        if (!L2Allowed())
        {
            Defer(l2Key, l2Key, value, _time.GetUtcNow() + lifetime);
            return;
        }

        using var deadline = new L2Deadline(_l2Timeout, _time, cancellationToken);
        using Activity? activity = CacheTelemetry.Start(CacheTelemetry.L2WriteActivity, _name, l2Key, _keysInTelemetry);
        try
        {
            var entryOptions = new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = lifetime };
            await BoundAsync(_l2!.SetAsync(l2Key, value, entryOptions, deadline.Token), deadline.Token).ConfigureAwait(false);
            _pending.TryRemove(l2Key, out _);
            L2Succeeded();
        }
        catch (OperationCanceledException) when (deadline.CallerCancelled)
        {
            throw;
        }
        catch (OperationCanceledException) when (deadline.TimedOut)
        {
            ReportL2Failure(OperationWrite, l2Key, null, activity);
            Defer(l2Key, l2Key, value, _time.GetUtcNow() + lifetime);
        }
        catch (Exception ex)
        {
            ReportL2Failure(OperationWrite, l2Key, ex, activity);
            Defer(l2Key, l2Key, value, _time.GetUtcNow() + lifetime);
        }
    }

    private string TagKey(string tag) => string.Concat(_keyPrefix, TagKeyPrefix, tag);

    /// <summary>What this node knows of one tag: when it was last invalidated, and when that was last checked.</summary>
    private sealed class TagState
    {
        private long _invalidated = long.MinValue;
        private long _checked = long.MinValue;

        public long InvalidatedTicks => Volatile.Read(ref _invalidated);

        public long CheckedTicks => Volatile.Read(ref _checked);

        public void Record(long invalidatedTicks, long checkedTicks)
        {
            // Both only move forward: a slow L2 read never undoes a newer local invalidation.
            for (long seen = InvalidatedTicks; invalidatedTicks > seen; seen = InvalidatedTicks)
            {
                if (Interlocked.CompareExchange(ref _invalidated, invalidatedTicks, seen) == seen)
                {
                    break;
                }
            }

            for (long seen = CheckedTicks; checkedTicks > seen; seen = CheckedTicks)
            {
                if (Interlocked.CompareExchange(ref _checked, checkedTicks, seen) == seen)
                {
                    break;
                }
            }
        }
    }
}
