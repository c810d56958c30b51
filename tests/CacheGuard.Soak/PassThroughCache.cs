namespace CacheGuard.Soak;

/// <summary>
/// The harness's own check (<c>--cache passthrough</c>): an <see cref="ICoalescingCache"/> that caches nothing and
/// coalesces nothing, every read going to the loader. Run against it, the checks must report no stale read (every
/// value is a database snapshot taken after the read started) and must report overlapping loads (nothing coalesces):
/// if either is not so, the checker is wrong, not the cache.
/// </summary>
internal sealed class PassThroughCache : ICoalescingCache
{
    public ValueTask<T> GetOrLoadAsync<T>(string key, Func<CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        new(loader(cancellationToken));

    public ValueTask<T> GetOrLoadAsync<TState, T>(string key, TState state, Func<TState, CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        new(loader(state, cancellationToken));

    public ValueTask<T> GetOrLoadAsync<TState, T>(string key, TState state, Func<TState, LoadContext<T>, CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("The soak does not use the LoadContext overload.");

    public ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<T>(IEnumerable<string> keys, Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        new(loader(keys.Distinct().ToList(), cancellationToken));

    public ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<TState, T>(IEnumerable<string> keys, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        new(loader(state, keys.Distinct().ToList(), cancellationToken));

    public ValueTask SetAsync<T>(string key, T value, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask RemoveAsync(string key, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask<CacheLookup<T>> TryGetAsync<T>(string key, CancellationToken cancellationToken = default) => new(default(CacheLookup<T>));

    public ValueTask RemoveByTagAsync(string tag, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
}
