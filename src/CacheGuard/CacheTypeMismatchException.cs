namespace CacheGuard;

/// <summary>
/// Thrown when a key is read as one type while the in-process cache, or a load in flight, holds it as another.
/// </summary>
/// <remarks>
/// CacheGuard never casts a cached value to a type it was not stored as: using one key for two types is a bug in
/// the calling code, and this exception names the key and both types so it can be found. Payloads in the
/// distributed cache (L2) carry a type tag; an L2 payload of another type is treated as a miss and overwritten,
/// because it may legitimately come from another version of the application.
/// </remarks>
public sealed class CacheTypeMismatchException : InvalidOperationException
{
    /// <summary>Initializes a new instance of the <see cref="CacheTypeMismatchException"/> class.</summary>
    public CacheTypeMismatchException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="CacheTypeMismatchException"/> class with a message.</summary>
    /// <param name="message">The message that describes the error.</param>
    public CacheTypeMismatchException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="CacheTypeMismatchException"/> class with a message and cause.</summary>
    /// <param name="message">The message that describes the error.</param>
    /// <param name="innerException">The exception that caused this one.</param>
    public CacheTypeMismatchException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="CacheTypeMismatchException"/> class for a key and its two types.</summary>
    /// <param name="key">The cache key.</param>
    /// <param name="cachedType">The type the key is held as.</param>
    /// <param name="requestedType">The type the caller asked for.</param>
    public CacheTypeMismatchException(string key, Type cachedType, Type requestedType)
        : this(key, cachedType, requestedType, keyInMessage: true)
    {
    }

    /// <summary>Used by the cache: the message quotes the key only when <see cref="CoalescingCacheOptions.IncludeKeysInTelemetry"/> is on.</summary>
    internal CacheTypeMismatchException(string key, Type cachedType, Type requestedType, bool keyInMessage)
        : base($"{(keyInMessage ? $"Cache key '{key}'" : "A cache key")} holds a value of type '{cachedType}', but it was requested as '{requestedType}'. Use a distinct key for each type.")
    {
        Key = key;
        CachedType = cachedType;
        RequestedType = requestedType;
    }

    /// <summary>Gets the key that was read as the wrong type (always set, for the calling code; the message quotes it only when the cache allows keys in telemetry).</summary>
    public string? Key { get; }

    /// <summary>Gets the type the key is held as.</summary>
    public Type? CachedType { get; }

    /// <summary>Gets the type the caller asked for.</summary>
    public Type? RequestedType { get; }
}
