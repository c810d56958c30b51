using System.Diagnostics.Metrics;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CacheGuard.Internal;

/// <summary>
/// The <see cref="ICoalescingCache"/> façade: it composes the rooms (see <c>README.md</c> in this folder) and answers L1
/// hits itself; everything else is forwarded. A hit completes synchronously and allocates nothing.
/// </summary>
internal sealed class DefaultCoalescingCache : ICoalescingCache, ICacheInvalidationSink, IDisposable
{
    private readonly CacheSettings _settings;
    private readonly L1Store _l1;
    private readonly L2Gateway? _l2;
    private readonly TagIndex _tags;
    private readonly HitChecker _hits;
    private readonly Publisher _publisher;
    private readonly Invalidations _invalidations;
    private readonly MissPipeline _misses;
    private readonly BackgroundWork _background;
    private readonly CacheMetrics _metrics;
    private readonly IDisposable? _backplaneSubscription;

    internal DefaultCoalescingCache(
        CoalescingCacheOptions options,
        IDistributedCache? distributedCache,
        TimeProvider? timeProvider = null,
        ILoggerFactory? loggerFactory = null,
        IMeterFactory? meterFactory = null,
        SerializerRegistry? serializers = null,
        Func<double>? random = null,
        ICacheBackplane? backplane = null,
        IDistributedLoadLock? loadLock = null,
        IBatchDistributedCache? batchReader = null,
        IDistributedCacheHealth? health = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _settings = new CacheSettings(options, timeProvider ?? TimeProvider.System, random ?? Random.Shared.NextDouble);
        if (options.DistributedLoadLock && loadLock is null)
        {
            throw new OptionsValidationException(options.Name, typeof(CoalescingCacheOptions), [
                "CoalescingCacheOptions.DistributedLoadLock is on, but no IDistributedLoadLock is configured: call .WithRedis(...) (CacheGuard.Redis) or .WithDistributedLoadLock(...) on the cache builder."]);
        }

        ILogger logger = loggerFactory?.CreateLogger("CacheGuard") ?? NullLogger.Instance;
        _metrics = new CacheMetrics(_settings.Name, meterFactory);
        _background = new BackgroundWork(_settings, logger);
        _l1 = new L1Store(_settings.Time, _settings.SizeLimit);
        var horizon = new LifetimeHorizon(_settings.DefaultExpiration);
        _l2 = distributedCache is null ? null : new L2Gateway(_settings, distributedCache, batchReader, health, serializers ?? new SerializerRegistry(null), _metrics, logger, _background, horizon, otherNodesAnnounce: backplane is not null);
        var versions = new KeyVersions();
        var link = new BackplaneLink(_settings, backplane, logger);
        _tags = new TagIndex(_settings, _l2, horizon, OnRemoteInvalidateAll);
        _hits = new HitChecker(_settings, _tags);
        _publisher = new Publisher(_settings, versions, _l1, _l2, _tags, horizon, link);
        _invalidations = new Invalidations(_settings, versions, _l1, _l2, _tags, link, _background, _metrics, logger);
        var loadLockLink = new LoadLockLink(_settings, options.DistributedLoadLock ? loadLock : null, _l2, _tags, _metrics, logger);
        _misses = new MissPipeline(_settings, _l1, _l2, _tags, versions, _publisher, loadLockLink, _hits, _background, _metrics, logger);
        if (_l2 is not null)
        {
            _l2.PendingWriteDropped += key => versions.Invalidate(key, _l1, removeFromL1: true, _settings.NowTicks);
            _l2.EntryReplayed += key => _background.Track(link.AnnounceAsync(key, null, CancellationToken.None).AsTask(), key);
        }

        _backplaneSubscription = link.Subscribe(this);
    }

    /// <summary>Gets whether this cache has an L2 (false: the embedded, L1-only default).</summary>
    internal bool HasDistributedCache => _l2 is not null;

    /// <summary>Gets the cache's name, as reported in metrics and logs.</summary>
    internal string Name => _settings.Name;

    /// <summary>Gets this instance's identity on the backplane.</summary>
    public string InstanceId { get; } = Guid.NewGuid().ToString("N", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Gets whether L1 holds <paramref name="key"/>, without loading or counting anything: a test hook.</summary>
    internal bool IsInL1(string key) => _l1.Contains(key);

    /// <summary>Gets the number of background loads, refreshes and other background work running: a test hook.</summary>
    internal int BackgroundCount => _background.Count;

    /// <summary>Gets the number of keys with a load in flight: a test hook.</summary>
    internal int InFlightCount => _misses.Flights.Count;

    /// <summary>Gets how many callers wait for the load of <paramref name="key"/>: a test hook.</summary>
    internal int WaitersFor(string key) => _misses.Flights.WaitersFor(key);

    /// <summary>Gets the L2 circuit breaker's state: a test hook.</summary>
    internal BreakerState BreakerState => _l2?.BreakerState ?? BreakerState.Closed;

    /// <summary>Gets how many L2 writes wait for replay: a test hook.</summary>
    internal int PendingWrites => _l2?.PendingWrites ?? 0;

    /// <summary>Gets how many batched L2 reads were made: a test hook.</summary>
    internal int BatchedL2Reads => _l2?.BatchedReads ?? 0;

    /// <summary>Gets how many tags this node holds knowledge of: a test hook.</summary>
    internal int KnownTagCount => _tags.Count;

    internal static DefaultCoalescingCache Create(IServiceProvider services, string name)
    {
        CoalescingCacheOptions options = services.GetRequiredService<IOptionsMonitor<CoalescingCacheOptions>>().Get(name);
        IDistributedCache? l2 = null;
        if (!options.DisableDistributedCache)
        {
            l2 = options.DistributedCacheFactory is { } factory
                ? factory(services)
                : services.GetService<IDistributedCache>() is { } registered and not MemoryDistributedCache ? registered : null;
        }

        return new DefaultCoalescingCache(
            options,
            l2,
            services.GetService<TimeProvider>(),
            services.GetService<ILoggerFactory>(),
            services.GetService<IMeterFactory>(),
            new SerializerRegistry(services),
            random: null,
            backplane: options.BackplaneFactory?.Invoke(services),
            loadLock: options.DistributedLoadLock ? options.LoadLockFactory?.Invoke(services) : null,
            batchReader: l2 is null ? null : options.BatchDistributedCacheFactory?.Invoke(services) ?? services.GetService<IBatchDistributedCache>(),
            health: l2 is null ? null : options.HealthFactory?.Invoke(services) ?? services.GetService<IDistributedCacheHealth>());
    }

    public ValueTask<T> GetOrLoadAsync<T>(string key, Func<CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(loader);
        return GetOrLoadAsync(key, loader, static (load, ct) => load(ct), options, cancellationToken);
    }

    public ValueTask<T> GetOrLoadAsync<TState, T>(string key, TState state, Func<TState, CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        GetOrLoadCore(key, state, new Loader<TState, T>(loader, null), options, cancellationToken);

    public ValueTask<T> GetOrLoadAsync<TState, T>(string key, TState state, Func<TState, LoadContext<T>, CancellationToken, Task<T>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        GetOrLoadCore(key, state, new Loader<TState, T>(null, loader), options, cancellationToken);

    private ValueTask<T> GetOrLoadCore<TState, T>(string key, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CancellationToken cancellationToken)
    {
        // The hit path: no validation beyond null checks is needed, because only validated keys ever reach L1.
        object? found = null;
        if (key is not null && !loader.IsNull && (options is null || (options.Flags & CacheEntryFlags.DisableLocalCacheRead) == 0)
            && _l1.TryGet(key, out found))
        {
            if (_tags.AllStale)
            {
                return AfterAllCheckAsync(this, key, state, loader, options, cancellationToken);
            }

            // A plain entry first: the common case, one type check.
            if (L1Slot.TryPlain(found!, out T value))
            {
                if (_metrics.Hits.Enabled)
                {
                    _metrics.HitL1();
                }

                return new ValueTask<T>(value);
            }

            if (found is not CacheItem<T> item)
            {
                return _misses.GetOrLoadAsync(key, state, loader, options, found, cancellationToken);
            }

            HitDecision decision = _hits.Check(item, allowRefresh: true);
            if (decision <= HitDecision.ServeAndRefresh)
            {
                if (decision == HitDecision.ServeAndRefresh)
                {
                    _misses.StartRefresh(key, state, loader, options, item);
                }

                if (_metrics.Hits.Enabled)
                {
                    _metrics.HitL1();
                }

                return new ValueTask<T>(item.Value);
            }
        }

        return _misses.GetOrLoadAsync(key!, state, loader, options, found, cancellationToken);

        // Once per TagCheckInterval (with an L2): re-read the "*" stamp before serving from L1, then decide as usual.
        static async ValueTask<T> AfterAllCheckAsync(DefaultCoalescingCache self, string key, TState state, Loader<TState, T> loader, CacheEntryOptions? options, CancellationToken cancellationToken)
        {
            await self._tags.RefreshAsync(null).ConfigureAwait(false);
            return await self.GetOrLoadCore(key, state, loader, options, cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<T>(IEnumerable<string> keys, Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(loader);
        return GetOrLoadManyAsync(keys, loader, static (load, missing, ct) => load(missing, ct), options, cancellationToken);
    }

    public ValueTask<IReadOnlyDictionary<string, T>> GetOrLoadManyAsync<TState, T>(IEnumerable<string> keys, TState state, Func<TState, IReadOnlyList<string>, CancellationToken, Task<IReadOnlyDictionary<string, T>>> loader, CacheEntryOptions? options = null, CancellationToken cancellationToken = default) =>
        _misses.GetOrLoadManyAsync(keys, state, loader, options, cancellationToken);

    public ValueTask<CacheLookup<T>> TryGetAsync<T>(string key, CancellationToken cancellationToken = default)
    {
        if (key is not null && _l1.TryGet(key, out object? found))
        {
            if (_tags.AllStale)
            {
                return AfterAllCheckAsync(this, key, cancellationToken);
            }

            if (found is CacheItem<T> item ? _hits.Check(item, allowRefresh: false) == HitDecision.Serve : L1Slot.TryPlain<T>(found!, out _))
            {
                if (_metrics.Hits.Enabled)
                {
                    _metrics.HitL1();
                }

                return new ValueTask<CacheLookup<T>>(found is CacheItem<T> checkedItem ? MissPipeline.ToLookup(checkedItem) : PlainLookup<T>(found!));
            }
        }

        return _misses.LookupAsync<T>(key!, CacheEntryFlags.None, cancellationToken);

        static async ValueTask<CacheLookup<T>> AfterAllCheckAsync(DefaultCoalescingCache self, string key, CancellationToken cancellationToken)
        {
            await self._tags.RefreshAsync(null).ConfigureAwait(false);
            return await self.TryGetAsync<T>(key, cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask SetAsync<T>(string key, T value, CacheEntryOptions? options = null, CancellationToken cancellationToken = default)
    {
        _settings.ValidateKey(key);
        options?.Validate();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        // With negative caching off, "not found" is remembered nowhere: writing null removes the key.
        return value is null && _settings.NegativeExpiration == TimeSpan.Zero
            ? _invalidations.RemoveAsync(key, cancellationToken)
            : _publisher.SetAsync(key, value, options, cancellationToken);
    }

    public ValueTask RemoveAsync(string key, CancellationToken cancellationToken = default)
    {
        _settings.ValidateKey(key);
        return cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled(cancellationToken) : _invalidations.RemoveAsync(key, cancellationToken);
    }

    public ValueTask RemoveByTagAsync(string tag, CancellationToken cancellationToken = default)
    {
        CacheEntryOptions.ValidateTag(tag, nameof(tag));
        return cancellationToken.IsCancellationRequested ? ValueTask.FromCanceled(cancellationToken) : _invalidations.RemoveByTagAsync(tag, cancellationToken);
    }

    public void OnInvalidation(CacheInvalidation invalidation) => _invalidations.OnRemote(invalidation);

    public void OnMessagesMayHaveBeenLost() => _invalidations.OnMessagesMayHaveBeenLost();

    public void Dispose()
    {
        _backplaneSubscription?.Dispose();
        _tags.Dispose();
        _l2?.Dispose();
        _l1.Dispose();
        _metrics.Dispose();
    }

    private void OnRemoteInvalidateAll() => _invalidations.OnRemoteInvalidateAll();

    private static CacheLookup<T> PlainLookup<T>(object found) =>
        L1Slot.TryPlain(found, out T value) && value is not null
            ? new CacheLookup<T>(CacheLookupStatus.Found, value)
            : new CacheLookup<T>(CacheLookupStatus.CachedNotFound, default);
}
