using System.Collections.Concurrent;

namespace CacheGuard.Internal;

/// <summary>
/// Tag invalidation without scanning. <c>RemoveByTagAsync(tag)</c> records "every entry with this tag created at or
/// before now is invalid", locally and as a stamp in L2; an entry is checked against its own tags (and <c>"*"</c>, which
/// every entry carries) on every L1 hit of a tagged entry, whenever it is read from L2, and when it is published.
/// </summary>
/// <remarks>
/// Other nodes learn of an invalidation from the backplane, or by re-reading a tag's stamp from L2 at most once per
/// <see cref="CoalescingCacheOptions.TagCheckInterval"/>; the <c>"*"</c> stamp is re-read the same way, when an entry is read
/// from L2 or hit in L1 after the interval passed (a timer marks it old; hits check one flag), so without a backplane no
/// node serves an entry created before it, from either level, for longer than the interval. What a node knows of a tag is forgotten once no entry it could
/// invalidate can still be alive (older than the longest lifetime written plus the fail-safe window) and its last check
/// is older than the interval, so the index stays bounded however many tags come and go.
/// </remarks>
internal sealed class TagIndex : IDisposable
{
    /// <summary>The tag every entry carries implicitly: <c>RemoveByTagAsync("*")</c> invalidates everything, as in HybridCache.</summary>
    public const string AllTag = "*";

    private const int MinPruneEvery = 1024;

    private readonly CacheSettings _settings;
    private readonly L2Gateway? _l2;
    private readonly Action _onRemoteInvalidateAll;
    private readonly CountedMap<TagState> _tags = new();
    private readonly ConcurrentDictionary<string, Task> _reads = new(StringComparer.Ordinal);
    private readonly TagState _all = new();
    private readonly ITimer? _allTimer;
    private volatile bool _allStale; // set every TagCheckInterval; cleared when the "*" stamp is re-read
    private long _lastAllStamp = long.MinValue;
    private readonly LifetimeHorizon _horizon;
    private int _addedSincePrune;

    public TagIndex(CacheSettings settings, L2Gateway? l2, LifetimeHorizon horizon, Action onRemoteInvalidateAll)
    {
        _settings = settings;
        _l2 = l2;
        _horizon = horizon;
        _onRemoteInvalidateAll = onRemoteInvalidateAll;
        if (l2 is not null)
        {
            // Marks what this node knows of "*" as old, without calling L2: the next hit re-reads it, so another node's
            // RemoveByTagAsync("*") reaches this node's L1 within the interval even without a backplane.
            _allTimer = settings.Time.CreateTimer(static s => ((TagIndex)s!)._allStale = true, this, settings.TagCheckInterval, settings.TagCheckInterval);
        }
    }

    /// <summary>Gets whether what this node knows of <c>"*"</c> is older than the check interval: hits must re-read it first.</summary>
    public bool AllStale => _allStale;

    /// <summary>Gets how many tags this node holds knowledge of: a test hook.</summary>
    public int Count => _tags.Count;

    /// <summary>Gets whether any tag (or everything) was ever invalidated or checked here: when not, no entry can be invalid.</summary>
    public bool IsEmpty => !_tags.MayHaveEntries && _all.InvalidatedTicks == long.MinValue;

    /// <summary>Whether, as far as this node knows, none of <paramref name="tags"/> nor everything was invalidated at or after <paramref name="createdTicks"/>.</summary>
    public bool Allows(string[]? tags, long createdTicks)
    {
        if (_all.InvalidatedTicks >= createdTicks)
        {
            return false;
        }

        if (tags is null)
        {
            return true;
        }

        foreach (string tag in tags)
        {
            if (_tags.TryGetValue(tag, out TagState? state) && state.InvalidatedTicks >= createdTicks)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Decides an L1 hit on a tagged entry: allowed, invalid, or unsure (with an L2, what this node knows of a tag is
    /// older than the check interval or missing, so it must be re-read first).
    /// </summary>
    public TagVerdict CheckHit(string[] tags, long createdTicks, long nowTicks)
    {
        if (!Allows(tags, createdTicks))
        {
            return TagVerdict.Invalid;
        }

        if (_l2 is null)
        {
            return TagVerdict.Allowed;
        }

        long interval = _settings.TagCheckInterval.Ticks;
        foreach (string tag in tags)
        {
            if (!_tags.TryGetValue(tag, out TagState? state) || nowTicks - state.CheckedTicks >= interval)
            {
                return TagVerdict.Unsure;
            }
        }

        return TagVerdict.Allowed;
    }

    /// <summary>
    /// Whether an item read from L2 survives tag invalidation, re-reading its tags' stamps, and the <c>"*"</c> stamp, when
    /// this node's knowledge of them is older than the check interval.
    /// </summary>
    public async ValueTask<bool> SurvivesAsync(CacheItem item)
    {
        await RefreshAsync(item.Tags).ConfigureAwait(false);

        return Allows(item.Tags, item.CreatedTicks);
    }

    /// <summary>
    /// Brings this node's knowledge of <paramref name="tags"/>, and of <c>"*"</c>, up to date from L2 where it is older than
    /// the check interval: at most one read per tag at a time.
    /// </summary>
    public async ValueTask RefreshAsync(string[]? tags)
    {
        if (_l2 is null)
        {
            return;
        }

        long now = _settings.NowTicks;
        if (_allStale || now - _all.CheckedTicks >= _settings.TagCheckInterval.Ticks)
        {
            await RefreshAllAsync().ConfigureAwait(false);
        }

        if (tags is null)
        {
            return;
        }

        foreach (string tag in tags)
        {
            if (_tags.TryGetValue(tag, out TagState? known) && now - known.CheckedTicks < _settings.TagCheckInterval.Ticks)
            {
                continue;
            }

            var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task read = _reads.GetOrAdd(tag, mine.Task);
            if (!ReferenceEquals(read, mine.Task))
            {
                await read.ConfigureAwait(false);
                continue;
            }

            try
            {
                // A failed read counts as a check too: serve on what this node knows and ask again after the interval,
                // rather than send every hit of a tagged entry to a failing L2 (or to the loader).
                long? stamp = await _l2.ReadStampAsync(_settings.Keys.TagStamp(tag)).ConfigureAwait(false);
                Record(tag, stamp ?? long.MinValue, _settings.NowTicks);
            }
            finally
            {
                _reads.TryRemove(new KeyValuePair<string, Task>(tag, mine.Task));
                mine.SetResult();
            }
        }
    }

    /// <summary>Records an invalidation made here, or announced by another node (whose clock is not ours: everything created here up to now).</summary>
    public void InvalidateLocally(string tag, long nowTicks)
    {
        if (tag == AllTag)
        {
            _all.Record(nowTicks, nowTicks);
        }
        else
        {
            Record(tag, nowTicks, nowTicks);
        }
    }

    /// <summary>Writes a tag's invalidation stamp to L2, for nodes that learn of it from there.</summary>
    public ValueTask WriteStampAsync(string tag, long nowTicks, CancellationToken cancellationToken) =>
        _l2 is null ? ValueTask.CompletedTask : _l2.WriteStampAsync(_settings.Keys.TagStamp(tag), nowTicks, cancellationToken);

    public void Dispose() => _allTimer?.Dispose();

    /// <summary>
    /// Re-reads the <c>"*"</c> stamp (one read at a time): a newer one than this node has seen means another node
    /// invalidated everything, so everything created here up to now goes (the writer's clock is not ours: too much is never wrong).
    /// </summary>
    private async ValueTask RefreshAllAsync()
    {
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task read = _reads.GetOrAdd(AllTag, mine.Task);
        if (!ReferenceEquals(read, mine.Task))
        {
            await read.ConfigureAwait(false);
            return;
        }

        try
        {
            long? stamp = await _l2!.ReadStampAsync(_settings.Keys.TagStamp(AllTag)).ConfigureAwait(false);
            long now = _settings.NowTicks;
            if (stamp is { } invalidated && invalidated > Interlocked.Exchange(ref _lastAllStamp, invalidated) && invalidated > _all.InvalidatedTicks)
            {
                // Everything created here before now goes (the writer's clock is not ours: too much is never wrong); work
                // that starts from this moment on, after the stamp, is not touched.
                _all.Record(Math.Max(invalidated, now - 1), now);
                _onRemoteInvalidateAll();
            }
            else
            {
                _all.Record(long.MinValue, now);
            }

            _allStale = false;
        }
        finally
        {
            _reads.TryRemove(new KeyValuePair<string, Task>(AllTag, mine.Task));
            mine.SetResult();
        }
    }

    private void Record(string tag, long invalidatedTicks, long checkedTicks)
    {
        if (!_tags.TryGetValue(tag, out TagState? state))
        {
            state = _tags.GetOrAdd(tag, static _ => new TagState());
            if (Interlocked.Increment(ref _addedSincePrune) >= Math.Max(MinPruneEvery, _tags.Count / 2))
            {
                Prune(checkedTicks);
            }
        }

        state.Record(invalidatedTicks, checkedTicks);
    }

    /// <summary>Forgets tags no live entry can depend on: invalidated before the horizon and not checked within the interval.</summary>
    private void Prune(long nowTicks)
    {
        Volatile.Write(ref _addedSincePrune, 0);
        long horizon = _horizon.Ticks;
        long interval = _settings.TagCheckInterval.Ticks;
        foreach (KeyValuePair<string, TagState> pair in _tags)
        {
            TagState state = pair.Value;
            if (nowTicks - state.CheckedTicks >= interval && (state.InvalidatedTicks == long.MinValue || nowTicks - state.InvalidatedTicks > horizon))
            {
                _tags.TryRemove(pair);
            }
        }
    }

    /// <summary>What this node knows of one tag: when it was last invalidated, and when that was last checked. Both only move forward.</summary>
    private sealed class TagState
    {
        private long _invalidated = long.MinValue;
        private long _checked; // 0: never checked (and no overflow in "now - checked")

        public long InvalidatedTicks => Volatile.Read(ref _invalidated);

        public long CheckedTicks => Volatile.Read(ref _checked);

        public void Record(long invalidatedTicks, long checkedTicks)
        {
            Advance(ref _invalidated, invalidatedTicks);
            Advance(ref _checked, checkedTicks);
        }

        private static void Advance(ref long field, long value)
        {
            for (long seen = Volatile.Read(ref field); value > seen; seen = Volatile.Read(ref field))
            {
                if (Interlocked.CompareExchange(ref field, value, seen) == seen)
                {
                    break;
                }
            }
        }
    }
}

internal enum TagVerdict
{
    Allowed,
    Invalid,
    Unsure,
}
