using System.Runtime.CompilerServices;
using Microsoft.Extensions.Caching.Hybrid;

namespace CacheGuard.Internal;

/// <summary>
/// <see cref="HybridCache"/> on top of an <see cref="ICoalescingCache"/>, so code written against Microsoft's
/// abstraction gets CacheGuard's coalescing, jitter and negative caching unchanged.
/// </summary>
/// <remarks>
/// Every member forwards to the one <see cref="ICoalescingCache"/> call with the same meaning. Entry options are
/// immutable (init-only), so each <see cref="HybridCacheEntryOptions"/> instance is converted once and the result is
/// reused: an L1 hit with shared options and no tags allocates nothing here beyond what the core does.
/// </remarks>
internal sealed class CoalescingHybridCache(ICoalescingCache cache) : HybridCache
{
    private readonly ConditionalWeakTable<HybridCacheEntryOptions, CacheEntryOptions> _converted = [];

    /// <summary>Gets the cache calls are forwarded to.</summary>
    internal ICoalescingCache Inner { get; } = cache;

    public override ValueTask<T> GetOrCreateAsync<TState, T>(
        string key,
        TState state,
        Func<TState, CancellationToken, ValueTask<T>> factory,
        HybridCacheEntryOptions? options = null,
        IEnumerable<string>? tags = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(factory);
        return Inner.GetOrLoadAsync(
            key,
            new Load<TState, T>(state, factory),
            static (load, ct) => load.Factory(load.State, ct).AsTask(),
            Convert(options, tags),
            cancellationToken);
    }

    public override ValueTask SetAsync<T>(string key, T value, HybridCacheEntryOptions? options = null, IEnumerable<string>? tags = null, CancellationToken cancellationToken = default) =>
        Inner.SetAsync(key, value, Convert(options, tags), cancellationToken);

    public override ValueTask RemoveAsync(string key, CancellationToken cancellationToken = default) =>
        Inner.RemoveAsync(key, cancellationToken);

    // "*" means "every entry" here as in Microsoft's implementation: the core treats it the same way.
    public override ValueTask RemoveByTagAsync(string tag, CancellationToken cancellationToken = default) =>
        Inner.RemoveByTagAsync(tag, cancellationToken);

    private CacheEntryOptions? Convert(HybridCacheEntryOptions? options, IEnumerable<string>? tags)
    {
        IReadOnlyList<string>? tagList = tags switch
        {
            null => null,
            IReadOnlyList<string> { Count: 0 } => null,
            IReadOnlyList<string> list => list,
            _ => tags.ToArray() is { Length: > 0 } array ? array : null,
        };

        if (tagList is not null)
        {
            CacheEntryOptions tagged = options is null ? new CacheEntryOptions() : ConvertOptions(options);
            tagged.Tags = tagList;
            return tagged;
        }

        return options is null ? null : _converted.GetValue(options, static o => ConvertOptions(o));
    }

    private static CacheEntryOptions ConvertOptions(HybridCacheEntryOptions options) => new()
    {
        Expiration = options.Expiration,
        LocalExpiration = options.LocalCacheExpiration,
        Flags = ConvertFlags(options.Flags ?? HybridCacheEntryFlags.None),
    };

    /// <summary>Maps the flags bit by bit; <see cref="HybridCacheEntryFlags.DisableCompression"/> has no meaning here (CacheGuard does not compress).</summary>
    internal static CacheEntryFlags ConvertFlags(HybridCacheEntryFlags flags)
    {
        CacheEntryFlags result = CacheEntryFlags.None;
        if ((flags & HybridCacheEntryFlags.DisableLocalCacheRead) != 0)
        {
            result |= CacheEntryFlags.DisableLocalCacheRead;
        }

        if ((flags & HybridCacheEntryFlags.DisableLocalCacheWrite) != 0)
        {
            result |= CacheEntryFlags.DisableLocalCacheWrite;
        }

        if ((flags & HybridCacheEntryFlags.DisableDistributedCacheRead) != 0)
        {
            result |= CacheEntryFlags.DisableDistributedCacheRead;
        }

        if ((flags & HybridCacheEntryFlags.DisableDistributedCacheWrite) != 0)
        {
            result |= CacheEntryFlags.DisableDistributedCacheWrite;
        }

        if ((flags & HybridCacheEntryFlags.DisableUnderlyingData) != 0)
        {
            result |= CacheEntryFlags.DisableUnderlyingData;
        }

        return result;
    }

    /// <summary>The caller's state and factory, passed through the core's state overload so no closure is allocated.</summary>
    private readonly record struct Load<TState, T>(TState State, Func<TState, CancellationToken, ValueTask<T>> Factory);
}
