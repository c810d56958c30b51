namespace CacheGuard;

/// <summary>What a lookup without a loader found.</summary>
public enum CacheLookupStatus
{
    /// <summary>No level holds the key.</summary>
    Miss,

    /// <summary>A level holds a value for the key.</summary>
    Found,

    /// <summary>A level holds a cached "not found" for the key (a loader returned <see langword="null"/>).</summary>
    CachedNotFound,
}

/// <summary>The result of <see cref="ICoalescingCache.TryGetAsync{T}(string, CancellationToken)"/>.</summary>
/// <typeparam name="T">The value type.</typeparam>
/// <param name="Status">Whether the key was found, cached as "not found", or missing.</param>
/// <param name="Value">The value when <paramref name="Status"/> is <see cref="CacheLookupStatus.Found"/>; otherwise <see langword="default"/>.</param>
/// <remarks><see langword="default"/> is a <see cref="CacheLookupStatus.Miss"/>.</remarks>
public readonly record struct CacheLookup<T>(CacheLookupStatus Status, T? Value)
{
    /// <summary>Gets whether a value was found.</summary>
    public bool Found => Status == CacheLookupStatus.Found;
}
