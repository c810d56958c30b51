using Microsoft.Extensions.Caching.Hybrid;

namespace CacheGuard.Ecosystem.Tests.Support;

/// <summary>Which API a scenario runs through.</summary>
public enum Api
{
    /// <summary><see cref="ICoalescingCache"/> itself.</summary>
    Core,

    /// <summary>Microsoft's <see cref="HybridCache"/> abstraction, registered with <c>AsHybridCache()</c>.</summary>
    Hybrid,
}

/// <summary>The calls both APIs share, so one scenario can run through either.</summary>
public abstract class CacheApi
{
    public static CacheApi For(Api api, IServiceProvider services) => api switch
    {
        Api.Core => new CoreApi((ICoalescingCache)services.GetService(typeof(ICoalescingCache))!),
        Api.Hybrid => new HybridApi((HybridCache)services.GetService(typeof(HybridCache))!),
        _ => throw new ArgumentOutOfRangeException(nameof(api)),
    };

    public abstract ValueTask<T> GetOrCreateAsync<T>(string key, Func<CancellationToken, Task<T>> load, CacheEntryFlags flags = CacheEntryFlags.None, string[]? tags = null, CancellationToken cancellationToken = default);

    public abstract ValueTask SetAsync<T>(string key, T value, string[]? tags = null);

    public abstract ValueTask RemoveAsync(string key);

    public abstract ValueTask RemoveByTagAsync(string tag);

    private sealed class CoreApi(ICoalescingCache cache) : CacheApi
    {
        public override ValueTask<T> GetOrCreateAsync<T>(string key, Func<CancellationToken, Task<T>> load, CacheEntryFlags flags, string[]? tags, CancellationToken cancellationToken) =>
            cache.GetOrLoadAsync(key, load, flags == CacheEntryFlags.None && tags is null ? null : new CacheEntryOptions { Flags = flags, Tags = tags }, cancellationToken);

        public override ValueTask SetAsync<T>(string key, T value, string[]? tags) =>
            cache.SetAsync(key, value, tags is null ? null : new CacheEntryOptions { Tags = tags });

        public override ValueTask RemoveAsync(string key) => cache.RemoveAsync(key);

        public override ValueTask RemoveByTagAsync(string tag) => cache.RemoveByTagAsync(tag);
    }

    private sealed class HybridApi(HybridCache cache) : CacheApi
    {
        public override ValueTask<T> GetOrCreateAsync<T>(string key, Func<CancellationToken, Task<T>> load, CacheEntryFlags flags, string[]? tags, CancellationToken cancellationToken) =>
            cache.GetOrCreateAsync(
                key,
                async ct => await load(ct),
                flags == CacheEntryFlags.None ? null : new HybridCacheEntryOptions { Flags = (HybridCacheEntryFlags)flags },
                tags,
                cancellationToken);

        public override ValueTask SetAsync<T>(string key, T value, string[]? tags) => cache.SetAsync(key, value, tags: tags);

        public override ValueTask RemoveAsync(string key) => cache.RemoveAsync(key);

        public override ValueTask RemoveByTagAsync(string tag) => cache.RemoveByTagAsync(tag);
    }
}
