namespace CacheGuard.Internal;

/// <summary>Decides what a hit on an L1 item may do: be served, be served and start a refresh, or go the slow way.</summary>
internal sealed class HitChecker(CacheSettings settings, TagIndex tags)
{
    public HitDecision Check(CacheItem item, bool allowRefresh)
    {
        long now = settings.NowTicks;
        if (now >= item.LocalExpiresTicks)
        {
            return HitDecision.Expired;
        }

        if (tags.AllStale)
        {
            return HitDecision.Unsure; // what this node knows of "*" is older than the check interval
        }

        TagVerdict verdict = item.Tags is { } itemTags
            ? tags.CheckHit(itemTags, item.CreatedTicks, now)
            : tags.Allows(null, item.CreatedTicks) ? TagVerdict.Allowed : TagVerdict.Invalid;
        if (verdict != TagVerdict.Allowed)
        {
            return verdict == TagVerdict.Invalid ? HitDecision.Invalid : HitDecision.Unsure;
        }

        if (allowRefresh
            && item.State is { } state
            && (now >= state.RefreshAtTicks || (state.Beta > 0 && XFetch.ShouldRefresh(now, state.LocalExpiresTicks, item.LoadDurationTicks, state.Beta, settings.Random())))
            && state.TryStartRefresh())
        {
            return HitDecision.ServeAndRefresh;
        }

        return HitDecision.Serve;
    }

    /// <summary>Whether an expired L1 item may still stand in for a failed or slow reload now.</summary>
    public bool IsUsableStale(CacheItem item) =>
        item.State is { FailSafe: true } state && settings.NowTicks < state.StaleUntilTicks && tags.Allows(item.Tags, item.CreatedTicks);
}

internal enum HitDecision
{
    Serve,
    ServeAndRefresh,
    Expired,
    Unsure,
    Invalid,
}
