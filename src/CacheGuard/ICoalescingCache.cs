namespace CacheGuard;

/// <summary>
/// A read-through, two-level cache: an in-process cache (L1) in front of an optional distributed cache (L2), in
/// front of your data source. Every miss is coalesced per key, so one load runs per key at a time however many
/// callers ask.
/// </summary>
/// <remarks>
/// Read path: L1, then L2, then the loader. Everything after an L1 miss runs once per key while concurrent callers
/// for that key wait for and share its result. Lifetimes are jittered (<see cref="CoalescingCacheOptions.JitterRatio"/>)
/// and <see langword="null"/> results are cached briefly (<see cref="CoalescingCacheOptions.NegativeExpiration"/>).
/// A failing L2 never fails a caller. Implementations are thread-safe.
/// </remarks>
public interface ICoalescingCache
{
    /// <summary>Gets the value cached under <paramref name="key"/>, loading it once if no level has it.</summary>
    /// <typeparam name="T">The value type. A key must always be used with the same type.</typeparam>
    /// <param name="key">The cache key: not empty or whitespace, at most <see cref="CoalescingCacheOptions.MaxKeyLength"/> characters.</param>
    /// <param name="loader">Loads the value from the data source. Its token is cancelled only when every caller waiting for this load has cancelled.</param>
    /// <param name="options">Per-entry overrides, or <see langword="null"/> for the cache defaults.</param>
    /// <param name="cancellationToken">Ends this caller's wait; the shared load goes on for other callers.</param>
    /// <returns>The cached or loaded value.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="loader"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="key"/> is empty, whitespace or too long.</exception>
    /// <exception cref="CacheTypeMismatchException">The key is held as another type.</exception>
    ValueTask<T> GetOrLoadAsync<T>(string key, Func<CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gets the value cached under <paramref name="key"/>, loading it once if no level has it; the loader receives
    /// <paramref name="state"/>, so a <see langword="static"/> lambda can avoid allocating a closure.
    /// </summary>
    /// <typeparam name="TState">The type of the state passed to the loader.</typeparam>
    /// <typeparam name="T">The value type. A key must always be used with the same type.</typeparam>
    /// <param name="key">The cache key: not empty or whitespace, at most <see cref="CoalescingCacheOptions.MaxKeyLength"/> characters.</param>
    /// <param name="state">Passed to <paramref name="loader"/>.</param>
    /// <param name="loader">Loads the value from the data source. Its token is cancelled only when every caller waiting for this load has cancelled.</param>
    /// <param name="options">Per-entry overrides, or <see langword="null"/> for the cache defaults.</param>
    /// <param name="cancellationToken">Ends this caller's wait; the shared load goes on for other callers.</param>
    /// <returns>The cached or loaded value.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="loader"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="key"/> is empty, whitespace or too long.</exception>
    /// <exception cref="CacheTypeMismatchException">The key is held as another type.</exception>
    ValueTask<T> GetOrLoadAsync<TState, T>(string key, TState state, Func<TState, CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gets the value cached under <paramref name="key"/>, loading it once if no level has it, with a loader that decides
    /// how its result is cached through a <see cref="LoadContext{T}"/>: its lifetimes and tags, "do not cache", and
    /// "not modified" (re-arm the stale value).
    /// </summary>
    /// <typeparam name="TState">The type of the state passed to the loader.</typeparam>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="key">The cache key.</param>
    /// <param name="state">Passed to <paramref name="loader"/>.</param>
    /// <param name="loader">Loads the value; the context exists only for this load, never on a hit.</param>
    /// <param name="options">Per-entry overrides; the context starts from them.</param>
    /// <param name="cancellationToken">Ends this caller's wait; the shared load goes on for other callers.</param>
    /// <returns>The cached or loaded value.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="loader"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="key"/> is empty, whitespace or too long.</exception>
    /// <exception cref="CacheTypeMismatchException">The key is held as another type.</exception>
    ValueTask<T> GetOrLoadAsync<TState, T>(string key, TState state, Func<TState, LoadContext<T>, CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Gets the values of many keys: hits from L1, then the rest from L2 in one batched read, then <b>one</b> loader call
    /// with only the keys still missing. Keys another caller is already loading are awaited, not loaded again; single
    /// callers that ask for a key this batch is loading wait for it.
    /// </summary>
    /// <typeparam name="T">The value type. Use a nullable type if the loader can leave keys out.</typeparam>
    /// <param name="keys">The keys; duplicates are fine.</param>
    /// <param name="loader">Loads the keys it is given and returns those it found; a key it leaves out is "not found" (cached for <see cref="CoalescingCacheOptions.NegativeExpiration"/> when <typeparamref name="T"/> can be <see langword="null"/>).</param>
    /// <param name="options">Per-entry overrides for every key.</param>
    /// <param name="cancellationToken">Ends this caller's wait; the loads go on for other callers.</param>
    /// <returns>The found keys and their values; keys not found are absent.</returns>
    ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<T>(IEnumerable<string> keys, Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Gets the values of many keys, with one loader call for those no level has; the loader receives <paramref name="state"/>.</summary>
    /// <typeparam name="TState">The type of the state passed to the loader.</typeparam>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="keys">The keys; duplicates are fine.</param>
    /// <param name="state">Passed to <paramref name="loader"/>.</param>
    /// <param name="loader">Loads the keys it is given and returns those it found.</param>
    /// <param name="options">Per-entry overrides for every key.</param>
    /// <param name="cancellationToken">Ends this caller's wait.</param>
    /// <returns>The found keys and their values; keys not found are absent.</returns>
    ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<TState, T>(IEnumerable<string> keys, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Writes <paramref name="value"/> under <paramref name="key"/> to L2, then to L1.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="key">The cache key.</param>
    /// <param name="value">The value; <see langword="null"/> is stored as "not found" for <see cref="CoalescingCacheOptions.NegativeExpiration"/>.</param>
    /// <param name="options">Per-entry overrides, or <see langword="null"/> for the cache defaults.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when both levels are written (a failed L2 write is logged and skipped).</returns>
    ValueTask SetAsync<T>(string key, T value, CacheEntryOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Removes <paramref name="key"/> from L2, then from L1.</summary>
    /// <param name="key">The cache key.</param>
    /// <param name="cancellationToken">Cancels the removal.</param>
    /// <returns>A task that completes when both levels are cleared (a failed L2 removal is logged and skipped).</returns>
    ValueTask RemoveAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Looks <paramref name="key"/> up in L1, then L2, without loading it. An L2 hit fills L1.</summary>
    /// <typeparam name="T">The value type.</typeparam>
    /// <param name="key">The cache key.</param>
    /// <param name="cancellationToken">Ends this caller's wait.</param>
    /// <returns>Whether the key was found, cached as "not found", or missing, and the value when found.</returns>
    /// <exception cref="CacheTypeMismatchException">The key is held in L1 as another type.</exception>
    ValueTask<CacheLookup<T>> TryGetAsync<T>(string key, CancellationToken cancellationToken = default);

    /// <summary>Invalidates every entry tagged with <paramref name="tag"/>, in L1 and L2, without scanning either.</summary>
    /// <param name="tag">The tag.</param>
    /// <param name="cancellationToken">Cancels the invalidation.</param>
    /// <returns>A task that completes when the invalidation is recorded (a failed L2 write is logged and skipped).</returns>
    ValueTask RemoveByTagAsync(string tag, CancellationToken cancellationToken = default);
}
