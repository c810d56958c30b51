namespace CacheGuard;

/// <summary>
/// Per-entry settings that override the cache-wide defaults in <see cref="CoalescingCacheOptions"/>.
/// </summary>
/// <remarks>
/// Every property is optional: <see langword="null"/> means "use the cache default". Instances are
/// read on each load and may be shared between calls; do not mutate one while a call that uses it runs.
/// </remarks>
public sealed class CacheEntryOptions
{
    /// <summary>Gets or sets how long the entry lives in the distributed cache (L2), before jitter.</summary>
    /// <value>The entry lifetime, or <see langword="null"/> for <see cref="CoalescingCacheOptions.DefaultExpiration"/>.</value>
    public TimeSpan? Expiration { get; set; }

    /// <summary>Gets or sets how long the entry lives in the in-process cache (L1), before jitter.</summary>
    /// <value>
    /// The local lifetime, or <see langword="null"/> for <see cref="CoalescingCacheOptions.DefaultLocalExpiration"/>
    /// (and, when that is unset too, the same as <see cref="Expiration"/>). It is capped at the L2 lifetime.
    /// </value>
    public TimeSpan? LocalExpiration { get; set; }

    /// <summary>Gets or sets the maximum random extension applied to this entry's lifetimes, as a fraction.</summary>
    /// <value>A value in [0, 1], or <see langword="null"/> for <see cref="CoalescingCacheOptions.JitterRatio"/>.</value>
    public double? JitterRatio { get; set; }

    /// <summary>Gets or sets whether this entry is kept past its expiry as a fail-safe stand-in.</summary>
    /// <value><see langword="null"/> for <see cref="CoalescingCacheOptions.FailSafe"/>.</value>
    public bool? FailSafe { get; set; }

    /// <summary>Gets or sets how long this entry is kept past its logical expiry when fail-safe is on.</summary>
    /// <value><see langword="null"/> for <see cref="CoalescingCacheOptions.FailSafeMaxDuration"/>.</value>
    public TimeSpan? FailSafeMaxDuration { get; set; }

    /// <summary>Gets or sets how long a stale value served by fail-safe is re-armed for.</summary>
    /// <value><see langword="null"/> for <see cref="CoalescingCacheOptions.FailSafeThrottleDuration"/>.</value>
    public TimeSpan? FailSafeThrottleDuration { get; set; }

    /// <summary>Gets or sets how long callers wait for this entry's loader before getting a stale value.</summary>
    /// <value><see langword="null"/> for <see cref="CoalescingCacheOptions.LoaderSoftTimeout"/>.</value>
    public TimeSpan? LoaderSoftTimeout { get; set; }

    /// <summary>Gets or sets the longest any caller waits for this entry's loader.</summary>
    /// <value><see langword="null"/> for <see cref="CoalescingCacheOptions.LoaderHardTimeout"/>.</value>
    public TimeSpan? LoaderHardTimeout { get; set; }

    /// <summary>Gets or sets the fraction of the entry's lifetime after which a hit refreshes it in the background.</summary>
    /// <value><see langword="null"/> for <see cref="CoalescingCacheOptions.EagerRefreshThreshold"/>.</value>
    public double? EagerRefreshThreshold { get; set; }

    /// <summary>Gets or sets whether hits refresh this entry early with XFetch's probability.</summary>
    /// <value><see langword="null"/> for <see cref="CoalescingCacheOptions.ProbabilisticEarlyRefresh"/>.</value>
    public bool? ProbabilisticEarlyRefresh { get; set; }

    /// <summary>Gets or sets switches that turn parts of the read-through path off for this call.</summary>
    /// <value><see cref="CacheEntryFlags.None"/> by default.</value>
    public CacheEntryFlags Flags { get; set; }

    /// <summary>Gets or sets the tags attached to the entry; <see cref="ICoalescingCache.RemoveByTagAsync(string, CancellationToken)"/> invalidates every entry carrying a tag.</summary>
    /// <value><see langword="null"/> (no tags) by default. Each tag must be non-empty and at most 256 characters; at most 64 tags.</value>
    public IReadOnlyList<string>? Tags { get; set; }

    internal void Validate()
    {
        ValidatePositive(Expiration, nameof(Expiration));
        ValidatePositive(LocalExpiration, nameof(LocalExpiration));
        if (JitterRatio is { } j && !(j >= 0 && j <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(JitterRatio), j, "CacheEntryOptions.JitterRatio must be between 0 and 1.");
        }

        ValidatePositive(FailSafeMaxDuration, nameof(FailSafeMaxDuration));
        ValidatePositive(FailSafeThrottleDuration, nameof(FailSafeThrottleDuration));
        ValidatePositive(LoaderSoftTimeout, nameof(LoaderSoftTimeout));
        ValidatePositive(LoaderHardTimeout, nameof(LoaderHardTimeout));
        if (EagerRefreshThreshold is { } t && !(t > 0 && t < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(EagerRefreshThreshold), t, "CacheEntryOptions.EagerRefreshThreshold must be between 0 and 1 (exclusive).");
        }

        ValidateTags(Tags, nameof(Tags));
    }

    private static void ValidatePositive(TimeSpan? value, string name) => ValidateLifetime(value, "CacheEntryOptions", name);

    /// <summary>Rejects a lifetime or timeout that is not positive or longer than any cache accepts, naming the option and the limit.</summary>
    internal static void ValidateLifetime(TimeSpan? value, string owner, string name)
    {
        if (value is { } v && (v <= TimeSpan.Zero || v > Internal.CoalescingCacheOptionsValidator.MaxLifetime))
        {
            throw new ArgumentOutOfRangeException(name, v, $"{owner}.{name} must be greater than zero and at most {Internal.CoalescingCacheOptionsValidator.MaxLifetime.TotalDays} days (was {v}).");
        }
    }

    internal const int MaxTags = 64;
    internal const int MaxTagLength = 256;

    internal static void ValidateTags(IReadOnlyList<string>? tags, string parameterName)
    {
        if (tags is null)
        {
            return;
        }

        if (tags.Count > MaxTags)
        {
            throw new ArgumentOutOfRangeException(parameterName, tags.Count, $"CacheEntryOptions.Tags holds {tags.Count} tags; the limit is {MaxTags}.");
        }

        foreach (string tag in tags)
        {
            ValidateTag(tag, parameterName);
        }
    }

    internal static void ValidateTag(string tag, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(tag, parameterName);
        if (string.IsNullOrWhiteSpace(tag) || tag.Length > MaxTagLength)
        {
            throw new ArgumentException($"The tag '{tag[..Math.Min(tag.Length, 64)]}' must be non-empty and at most {MaxTagLength} characters (it has {tag.Length}).", parameterName);
        }
    }
}
