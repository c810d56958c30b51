namespace CacheGuard.Internal;

/// <summary>
/// The one publish step. Every value that may enter L1 or L2 (a load, a refresh, a load finishing in the background, an
/// L2 hit, a lookup's fill, a lock owner's value, a stale value re-armed, a <c>SetAsync</c>) goes through here, and lands
/// only if nothing invalidated its key since its work started: the ticket it started with is still current (checked under
/// the key's stripe lock together with the L1 write) and none of its tags, nor everything, was invalidated since.
/// </summary>
/// <remarks>
/// An L2 write runs in the key's sequencer turn, so this node's mutations of a key reach L2 in order. When an
/// invalidation overtakes a write while it is on its way to L2, the write is compensated (removed again) in the same turn,
/// before any later mutation of the key runs: L2 never keeps a superseded value this node wrote.
/// </remarks>
internal sealed class Publisher(CacheSettings settings, KeyVersions versions, L1Store l1, L2Gateway? l2, TagIndex tags, LifetimeHorizon horizon, BackplaneLink backplane)
{
    /// <summary>Places a value from work that started with <paramref name="ticket"/> in L1, if it may still land there.</summary>
    /// <returns>Whether it landed.</returns>
    /// <param name="key">The key.</param>
    /// <param name="ticket">The versions the work started from.</param>
    /// <param name="item">The value and its times.</param>
    /// <param name="policy">The entry's policy.</param>
    /// <param name="localLifetime">How long the L1 copy is fresh.</param>
    /// <param name="flags">The call's flags: <see cref="CacheEntryFlags.DisableLocalCacheWrite"/> keeps it out of L1.</param>
    /// <param name="rearm">A stale value re-armed by fail-safe (see <see cref="L1Store.Place{T}"/>).</param>
    public bool PublishLocal<T>(string key, in Ticket ticket, CacheItem<T> item, in Policy policy, TimeSpan localLifetime, CacheEntryFlags flags, bool rearm = false) =>
        PublishLocal(key, ticket, new L1Entry<T>(item), policy, localLifetime, flags, settings.NowTicks, rearm);

    /// <summary>Places an entry from work that started with <paramref name="ticket"/> in L1, if it may still land there: the one check every L1 write of a value passes.</summary>
    private bool PublishLocal<T>(string key, in Ticket ticket, in L1Entry<T> entry, in Policy policy, TimeSpan localLifetime, CacheEntryFlags flags, long now, bool rearm = false)
    {
        if ((flags & CacheEntryFlags.DisableLocalCacheWrite) != 0)
        {
            return false;
        }

        lock (versions.LockOf(ticket))
        {
            if (!Admissible(ticket, entry.Tags))
            {
                return false;
            }

            l1.Place(key, entry, policy, localLifetime, now, rearm);
            return true;
        }
    }

    /// <summary>
    /// Stores a loaded value: L2 (unless disabled), then L1, each only if it may still land; then tells other nodes.
    /// Completes synchronously when there is no L2 write.
    /// </summary>
    /// <param name="key">The key.</param>
    /// <param name="ticket">The versions the load started from.</param>
    /// <param name="loaded">The value and its times.</param>
    /// <param name="policy">The entry's policy.</param>
    /// <param name="lifetimes">The entry's jittered lifetimes.</param>
    /// <param name="flags">The call's flags.</param>
    /// <param name="now">The current time in UTC ticks, just read by the caller (used unless the L2 write makes it old).</param>
    public ValueTask PublishLoadedAsync<T>(string key, in Ticket ticket, in L1Entry<T> loaded, in Policy policy, in Lifetimes lifetimes, CacheEntryFlags flags, long now)
    {
        bool notFound = loaded.Value is null;
        if (notFound && settings.NegativeExpiration == TimeSpan.Zero)
        {
            return default; // negative caching is off: absence is not remembered anywhere
        }

        TimeSpan lifetime = lifetimes.DistributedFor(notFound);
        TimeSpan physical = policy.FailSafe ? lifetime + policy.FailSafeMax : lifetime;
        horizon.Note(physical.Ticks);
        if (l2 is not null && (flags & CacheEntryFlags.DisableDistributedCacheWrite) == 0)
        {
            return StoreThenPlaceAsync(key, ticket, loaded.ToItem(), policy, lifetimes.LocalFor(notFound), flags, physical);
        }

        // A load is not announced: it changed nothing other nodes hold (only writes and removals are announced).
        PublishLocal(key, ticket, loaded, policy, lifetimes.LocalFor(notFound), flags, now);
        return default;
    }

    private async ValueTask StoreThenPlaceAsync<T>(string key, Ticket ticket, CacheItem<T> item, Policy policy, TimeSpan localLifetime, CacheEntryFlags flags, TimeSpan physical)
    {
        if (!Admissible(ticket, item.Tags))
        {
            return;
        }

        if (await WriteL2Async(key, ticket, item, physical).ConfigureAwait(false) == WriteOutcome.Written)
        {
            PublishLocal(key, ticket, item, policy, localLifetime, flags);
        }
    }

    /// <summary>
    /// <c>SetAsync</c>: supersedes the loads in flight, then, in the key's sequencer turn (taken in call order), writes L2
    /// and places the value in L1, superseding again the loads that read L2 meanwhile; then tells other nodes.
    /// </summary>
    /// <remarks>
    /// This node's writes of a key are ordered by the sequencer, so a later <c>SetAsync</c> or <c>RemoveAsync</c> always
    /// lands after this one, in L2 and in L1. Another node's announcement does not stop a write: two nodes writing one key
    /// at once have no order, and either value is a valid outcome. Only an invalidation of everything (or of one of its
    /// tags) that came after the write began keeps it out of L1.
    /// </remarks>
    public async ValueTask SetAsync<T>(string key, T value, CacheEntryOptions? options, CancellationToken cancellationToken)
    {
        long now = settings.NowTicks;
        Ticket ticket = versions.Invalidate(key, l1, removeFromL1: false, now);
        Policy policy = settings.Resolve(options);
        Lifetimes lifetimes = settings.JitteredLifetimes(options?.Expiration, options?.LocalExpiration, options?.JitterRatio);
        bool notFound = value is null;
        TimeSpan lifetime = lifetimes.DistributedFor(notFound);
        TimeSpan physical = policy.FailSafe ? lifetime + policy.FailSafeMax : lifetime;
        horizon.Note(physical.Ticks);
        var item = new CacheItem<T>(value, now, now + lifetime.Ticks, options?.Tags is { Count: > 0 } t ? [.. t] : null);
        CacheEntryFlags flags = options?.Flags ?? CacheEntryFlags.None;
        bool place = (flags & CacheEntryFlags.DisableLocalCacheWrite) == 0;
        l2?.NoteOwnChange(key, now);
        if (l2 is not null && (flags & CacheEntryFlags.DisableDistributedCacheWrite) == 0)
        {
            using KeyedSequencer.Turn turn = await l2.Sequencer.EnterAsync(settings.Keys.Entry(key)).ConfigureAwait(false);
            place &= await l2.WriteAsync(key, item, physical, replayable: true, cancellationToken).ConfigureAwait(false);
            PlaceWritten(key, ticket, item, policy, lifetimes.LocalFor(notFound), place);
        }
        else
        {
            PlaceWritten(key, ticket, item, policy, lifetimes.LocalFor(notFound), place);
        }

        await backplane.AnnounceAsync(key, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The last step of a write: supersede the loads that read L2 meanwhile, and place the value in L1 (or drop the old one).</summary>
    private void PlaceWritten<T>(string key, in Ticket ticket, CacheItem<T> item, in Policy policy, TimeSpan localLifetime, bool place)
    {
        lock (versions.LockOf(ticket))
        {
            versions.BumpLocked(ticket);
            if (place && versions.IsAllCurrent(ticket) && (tags.IsEmpty || tags.Allows(item.Tags, ticket.StartedTicks)))
            {
                l1.Place(key, new L1Entry<T>(item), policy, localLifetime, settings.NowTicks);
            }
            else
            {
                l1.Remove(key); // not placed: no older copy may stay
            }
        }
    }

    /// <summary>Whether a value from work with <paramref name="ticket"/> may still land: its key, everything and its tags were not invalidated since.</summary>
    private bool Admissible(in Ticket ticket, string[]? itemTags) => versions.IsCurrent(ticket) && (tags.IsEmpty || tags.Allows(itemTags, ticket.StartedTicks));

    /// <summary>
    /// Writes a loaded value to L2 in the key's turn. One that an invalidation overtook on its way is removed again in the
    /// same turn: the invalidation may be another node's write that reached L2 first.
    /// </summary>
    private async ValueTask<WriteOutcome> WriteL2Async<T>(string key, Ticket ticket, CacheItem<T> item, TimeSpan physical)
    {
        using KeyedSequencer.Turn turn = await l2!.Sequencer.EnterAsync(settings.Keys.Entry(key)).ConfigureAwait(false);
        if (!Admissible(ticket, item.Tags))
        {
            return WriteOutcome.Superseded;
        }

        // Noted before the write goes out: another node's write announced from now on may have reached L2 first.
        l2.NoteRecentWrite(key, item.CreatedTicks);
        if (!await l2.WriteAsync(key, item, physical, replayable: false, CancellationToken.None).ConfigureAwait(false))
        {
            // Neither written nor queued: no node may keep a value L2 never saw.
            lock (versions.LockOf(ticket))
            {
                l1.Remove(key);
            }

            return WriteOutcome.Dropped;
        }

        if (!Admissible(ticket, item.Tags))
        {
            await l2.RemoveAsync(key, CancellationToken.None).ConfigureAwait(false);
            return WriteOutcome.Superseded;
        }

        return WriteOutcome.Written;
    }

    private enum WriteOutcome
    {
        Written,
        Superseded,
        Dropped,
    }
}
