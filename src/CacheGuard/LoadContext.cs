namespace CacheGuard;

/// <summary>
/// Handed to a loader by the context overload of <see cref="ICoalescingCache"/>'s <c>GetOrLoadAsync</c>: lets the
/// loader decide, from its result, how that result is cached, and shows it the stale value when one exists.
/// </summary>
/// <remarks>
/// One context exists per load, never per hit. Set its properties before the loader's task completes; they are read
/// once, when it does.
/// </remarks>
/// <typeparam name="T">The value type.</typeparam>
public sealed class LoadContext<T>
{
    private TimeSpan? _expiration;
    private TimeSpan? _localExpiration;
    private IReadOnlyList<string>? _tags;

    private readonly bool _keyInMessages;

    internal LoadContext(string key, bool hasStaleValue, T? staleValue, DateTimeOffset? staleValueCreated, CacheEntryOptions? options, bool keyInMessages = false)
    {
        _keyInMessages = keyInMessages;
        Key = key;
        HasStaleValue = hasStaleValue;
        StaleValue = staleValue;
        StaleValueCreated = staleValueCreated;
        _expiration = options?.Expiration;
        _localExpiration = options?.LocalExpiration;
        _tags = options?.Tags;
    }

    /// <summary>Gets the key being loaded.</summary>
    public string Key { get; }

    /// <summary>Gets whether a stale value for the key exists (kept by fail-safe, or being refreshed early).</summary>
    public bool HasStaleValue { get; }

    /// <summary>Gets the stale value, or <see langword="default"/> when <see cref="HasStaleValue"/> is <see langword="false"/>.</summary>
    public T? StaleValue { get; }

    /// <summary>Gets when the stale value was loaded (for an <c>If-Modified-Since</c> request), or <see langword="null"/>.</summary>
    public DateTimeOffset? StaleValueCreated { get; }

    /// <summary>Gets or sets the L2 lifetime of the result, before jitter.</summary>
    /// <value>Starts as the call's <see cref="CacheEntryOptions.Expiration"/>; <see langword="null"/> means the cache default.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not greater than zero, or longer than 3650 days.</exception>
    public TimeSpan? Expiration
    {
        get => _expiration;
        set => _expiration = Positive(value, nameof(Expiration));
    }

    /// <summary>Gets or sets the L1 lifetime of the result, before jitter.</summary>
    /// <value>Starts as the call's <see cref="CacheEntryOptions.LocalExpiration"/>; <see langword="null"/> means the cache default.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is not greater than zero, or longer than 3650 days.</exception>
    public TimeSpan? LocalExpiration
    {
        get => _localExpiration;
        set => _localExpiration = Positive(value, nameof(LocalExpiration));
    }

    /// <summary>Gets or sets the result's tags.</summary>
    /// <value>Starts as the call's <see cref="CacheEntryOptions.Tags"/>.</value>
    public IReadOnlyList<string>? Tags
    {
        get => _tags;
        set
        {
            CacheEntryOptions.ValidateTags(value, nameof(Tags));
            _tags = value;
        }
    }

    /// <summary>Gets whether the loader asked for its result not to be cached.</summary>
    public bool CachingDisabled { get; private set; }

    /// <summary>Gets whether the loader answered "not modified" through <see cref="NotModified"/>.</summary>
    public bool IsNotModified { get; private set; }

    /// <summary>Asks for the result not to be cached: it still reaches every waiting caller.</summary>
    public void DoNotCache() => CachingDisabled = true;

    /// <summary>
    /// Answers "not modified": returns the stale value, which is then cached again with fresh lifetimes. Use it when a
    /// conditional request (ETag, Last-Modified) says the source has not changed.
    /// </summary>
    /// <returns>The stale value, for the loader to return.</returns>
    /// <exception cref="InvalidOperationException">There is no stale value.</exception>
    public T NotModified()
    {
        if (!HasStaleValue)
        {
            string which = _keyInMessages ? $"cache key '{Key}'" : "this key";
            throw new InvalidOperationException($"The load of {which} has no stale value, so it cannot answer 'not modified'. Check HasStaleValue first.");
        }

        IsNotModified = true;
        return StaleValue!;
    }

    private static TimeSpan? Positive(TimeSpan? value, string name)
    {
        CacheEntryOptions.ValidateLifetime(value, "LoadContext", name);
        return value;
    }
}
