namespace CacheGuard.Internal;

/// <summary>
/// Where every L2 key comes from, so that no user key of any cache sharing an L2 can reach another cache's entries or
/// CacheGuard's own keys (tag stamps, load locks).
/// </summary>
/// <remarks>
/// Every internal key, and every key of a named cache, starts with <see cref="Reserved"/> followed by a kind and the
/// cache's length-prefixed registration name (<c>0::</c> for the unnamed cache). A user key of the unnamed cache that
/// itself starts with <see cref="Reserved"/> is moved under the <c>user</c> kind, so it cannot take the shape of one.
/// <see cref="CoalescingCacheOptions.KeyPrefix"/> comes first in every key.
/// <code>
/// unnamed cache entry   {prefix}{key}            ({prefix}__cacheguard:user:{key} when key starts with "__cacheguard:")
/// named cache entry     {prefix}__cacheguard:cache:{len}:{name}:{key}
/// tag stamp             {prefix}__cacheguard:tag:{len}:{name}:{tag}
/// load lock             {prefix}__cacheguard:lock:{len}:{name}:{key}
/// </code>
/// </remarks>
internal sealed class KeySpace
{
    public const string Reserved = "__cacheguard:";

    private readonly string _prefix;
    private readonly string? _entries; // null for the unnamed cache: its keys are used as they are
    private readonly string _userEscape;
    private readonly string _tags;
    private readonly string _locks;

    public KeySpace(string prefix, string? registeredName)
    {
        _prefix = prefix;
        string name = registeredName ?? string.Empty;
        string scope = $"{name.Length}:{name}:";
        _entries = name.Length == 0 ? null : string.Concat(prefix, Reserved, "cache:", scope);
        _userEscape = string.Concat(prefix, Reserved, "user:");
        _tags = string.Concat(prefix, Reserved, "tag:", scope);
        _locks = string.Concat(prefix, Reserved, "lock:", scope);
    }

    /// <summary>Gets the L2 key of a cache entry.</summary>
    public string Entry(string key)
    {
        if (_entries is not null)
        {
            return string.Concat(_entries, key);
        }

        if (key.StartsWith(Reserved, StringComparison.Ordinal))
        {
            return string.Concat(_userEscape, key);
        }

        return _prefix.Length == 0 ? key : string.Concat(_prefix, key);
    }

    /// <summary>Gets the L2 key of a tag's invalidation stamp.</summary>
    public string TagStamp(string tag) => string.Concat(_tags, tag);

    /// <summary>Gets the key of the distributed load lock for a cache key.</summary>
    public string Lock(string key) => string.Concat(_locks, key);
}
