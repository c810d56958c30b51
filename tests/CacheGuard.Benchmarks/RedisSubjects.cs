using System.Text.Json;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;
using ZiggyCreatures.Caching.Fusion;

namespace CacheGuard.Benchmarks;

/// <summary>
/// One library over the shared Redis, seen through the four calls the Redis scenarios make. Each instance owns its
/// service provider (one "node"): its own L1, its own connections to the same server.
/// </summary>
internal abstract class RedisSubject : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    protected RedisSubject(string library, string variant, ServiceProvider services)
    {
        LibraryName = library;
        Variant = variant;
        _services = services;
    }

    public string LibraryName { get; }

    /// <summary>How this instance is set up beyond the common settings ("", "distributed lock").</summary>
    public string Variant { get; }

    public string Name => Variant.Length == 0 ? LibraryName : $"{LibraryName}, {Variant}";

    protected IServiceProvider Services => _services;

    public static RedisSubject Create(string library, string redis, bool distributedLock = false) => library switch
    {
        Library.Raw => new RawSubject(redis),
        Library.CacheGuard => new CacheGuardSubject(redis, distributedLock),
        Library.Hybrid when !distributedLock => new HybridSubject(redis),
        Library.Fusion => new FusionSubject(redis, distributedLock),
        _ => throw new ArgumentOutOfRangeException(nameof(library), library, "No such subject with these settings."),
    };

    /// <summary>Stores a value the way this library writes it.</summary>
    public abstract ValueTask SetAsync(string key, Product value);

    /// <summary>Reads a stored value from L2, skipping this node's L1; a load would be a failure and throws.</summary>
    public abstract ValueTask<Product> GetFromL2Async(string key);

    /// <summary>The read-through call: L1, L2, then <paramref name="loader"/>.</summary>
    public abstract ValueTask<Product> GetOrLoadAsync(string key, Func<string, CancellationToken, Task<Product>> loader);

    /// <summary>Many keys at once: CacheGuard's batch call; for the others, the per-key call for each key, awaited together.</summary>
    public virtual async ValueTask<int> GetManyAsync(IReadOnlyList<string> keys, Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, Product>>> batchLoader)
    {
        var calls = new Task<Product>[keys.Count];
        for (int i = 0; i < keys.Count; i++)
        {
            calls[i] = GetOrLoadAsync(keys[i], async (key, ct) => (await batchLoader([key], ct).ConfigureAwait(false))[key]).AsTask();
        }

        return (await Task.WhenAll(calls).ConfigureAwait(false)).Length;
    }

    public ValueTask DisposeAsync() => _services.DisposeAsync();

    protected static Exception NotAnL2Hit(string key) => new InvalidOperationException($"Expected an L2 hit for '{key}', not a load.");

    /// <summary>Cache-aside by hand over Microsoft's RedisCache and System.Text.Json: the raw baseline.</summary>
    private sealed class RawSubject : RedisSubject
    {
        private static readonly DistributedCacheEntryOptions Entry = new() { AbsoluteExpirationRelativeToNow = Peers.L2Expiration };

        public RawSubject(string redis)
            : base(Library.Raw, string.Empty, Peers.RawRedis(redis)) =>
            Cache = Services.GetRequiredService<IDistributedCache>();

        private IDistributedCache Cache { get; }

        public override ValueTask SetAsync(string key, Product value) => new(Cache.SetAsync(key, JsonSerializer.SerializeToUtf8Bytes(value), Entry));

        public override async ValueTask<Product> GetFromL2Async(string key)
        {
            byte[]? bytes = await Cache.GetAsync(key).ConfigureAwait(false);
            return bytes is null ? throw NotAnL2Hit(key) : JsonSerializer.Deserialize<Product>(bytes)!;
        }

        public override async ValueTask<Product> GetOrLoadAsync(string key, Func<string, CancellationToken, Task<Product>> loader)
        {
            byte[]? bytes = await Cache.GetAsync(key).ConfigureAwait(false);
            if (bytes is not null)
            {
                return JsonSerializer.Deserialize<Product>(bytes)!;
            }

            Product value = await loader(key, CancellationToken.None).ConfigureAwait(false);
            await Cache.SetAsync(key, JsonSerializer.SerializeToUtf8Bytes(value), Entry).ConfigureAwait(false);
            return value;
        }
    }

    private sealed class CacheGuardSubject : RedisSubject
    {
        private static readonly CacheEntryOptions L2Only = new() { Flags = CacheEntryFlags.DisableLocalCacheRead };
        private readonly ICoalescingCache _cache;

        public CacheGuardSubject(string redis, bool distributedLock)
            : base(Library.CacheGuard, distributedLock ? "distributed lock" : string.Empty, distributedLock ? Peers.CacheGuardWithLoadLock(redis) : Peers.CacheGuard(redis)) =>
            _cache = Services.GetRequiredService<ICoalescingCache>();

        public override ValueTask SetAsync(string key, Product value) => _cache.SetAsync(key, value);

        public override ValueTask<Product> GetFromL2Async(string key) =>
            _cache.GetOrLoadAsync(key, key, static (k, _) => Task.FromException<Product>(NotAnL2Hit(k)), L2Only);

        public override ValueTask<Product> GetOrLoadAsync(string key, Func<string, CancellationToken, Task<Product>> loader) =>
            _cache.GetOrLoadAsync(key, (key, loader), static (s, ct) => s.loader(s.key, ct));

        public override async ValueTask<int> GetManyAsync(IReadOnlyList<string> keys, Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, Product>>> batchLoader) =>
            (await _cache.GetOrLoadManyAsync(keys, batchLoader).ConfigureAwait(false)).Count;
    }

    private sealed class HybridSubject : RedisSubject
    {
        private static readonly HybridCacheEntryOptions L2Only = new() { Flags = HybridCacheEntryFlags.DisableLocalCacheRead };
        private readonly HybridCache _cache;

        public HybridSubject(string redis)
            : base(Library.Hybrid, string.Empty, Peers.Hybrid(redis)) =>
            _cache = Services.GetRequiredService<HybridCache>();

        public override ValueTask SetAsync(string key, Product value) => _cache.SetAsync(key, value);

        public override ValueTask<Product> GetFromL2Async(string key) =>
            _cache.GetOrCreateAsync(key, key, static (k, _) => ValueTask.FromException<Product>(NotAnL2Hit(k)), L2Only);

        public override ValueTask<Product> GetOrLoadAsync(string key, Func<string, CancellationToken, Task<Product>> loader) =>
            _cache.GetOrCreateAsync(key, (key, loader), static (s, ct) => new ValueTask<Product>(s.loader(s.key, ct)));
    }

    private sealed class FusionSubject : RedisSubject
    {
        private readonly IFusionCache _cache;
        private readonly FusionCacheEntryOptions _l2Only;

        public FusionSubject(string redis, bool distributedLock)
            : base(Library.Fusion, distributedLock ? "distributed lock" : string.Empty, Peers.Fusion(redis, distributedLock))
        {
            _cache = Services.GetRequiredService<IFusionCache>();
            _l2Only = _cache.CreateEntryOptions(o => o.SkipMemoryCacheRead = true);
        }

        public override ValueTask SetAsync(string key, Product value) => _cache.SetAsync(key, value);

        public override ValueTask<Product> GetFromL2Async(string key) =>
            _cache.GetOrSetAsync<Product>(key, static (_, _) => Task.FromException<Product>(NotAnL2Hit("(FusionCache has no state overload)")), _l2Only);

        public override ValueTask<Product> GetOrLoadAsync(string key, Func<string, CancellationToken, Task<Product>> loader) =>
            _cache.GetOrSetAsync<Product>(key, (_, ct) => loader(key, ct));
    }
}
