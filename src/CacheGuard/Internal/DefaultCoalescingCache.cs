using System.Diagnostics.Metrics;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CacheGuard.Internal;

/// <summary>
/// The <see cref="ICoalescingCache"/> implementation. This file: construction and the hit path. See
/// <c>.Load.cs</c> for the coalesced miss path and <c>.L2.cs</c> for the distributed tier; <c>README.md</c> in this
/// folder describes how a request flows.
/// </summary>
internal sealed partial class DefaultCoalescingCache : ICoalescingCache, ICacheInvalidationSink, IDisposable
{
    private readonly MemoryCache _l1;
    private readonly IDistributedCache? _l2;
    private readonly IBufferDistributedCache? _l2Buffers;
    private readonly IBatchDistributedCache? _l2Batch;
    private readonly IDistributedCacheHealth? _health;
    private readonly FlightTable<string> _flights = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CacheMetrics _metrics;
    private readonly SerializerRegistry _serializers;
    private readonly Func<double> _random;

    // Options, snapshotted once.
    private readonly string _name;
    private readonly string _keyPrefix;
    private readonly int _maxKeyLength;
    private readonly TimeSpan _defaultExpiration;
    private readonly TimeSpan? _defaultLocalExpiration;
    private readonly TimeSpan _negativeExpiration;
    private readonly TimeSpan _l2Timeout;
    private readonly double _jitterRatio;
    private readonly bool _sized;
    private readonly bool _keysInTelemetry;
    private readonly TimeSpan _tagCheckInterval;
    private readonly Policy _defaultPolicy;
    private readonly double _beta;
    private readonly bool _allowBackgroundCompletion;
    private int _backgroundCount;
    private readonly int _breakerThreshold;
    private readonly TimeSpan _breakerWindow;
    private readonly TimeSpan _breakerDuration;

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
        ValidateOptionsResult validation = new CoalescingCacheOptionsValidator().Validate(options.Name, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(options.Name, typeof(CoalescingCacheOptions), validation.Failures);
        }

        _time = timeProvider ?? TimeProvider.System;
        _name = options.Name;
        _keyPrefix = options.KeyPrefix;
        _maxKeyLength = options.MaxKeyLength;
        _defaultExpiration = options.DefaultExpiration;
        _defaultLocalExpiration = options.DefaultLocalExpiration;
        _negativeExpiration = options.NegativeExpiration;
        _l2Timeout = options.DistributedCacheTimeout;
        _jitterRatio = options.JitterRatio;
        _sized = options.SizeLimit is not null;
        _keysInTelemetry = options.IncludeKeysInTelemetry;
        _tagCheckInterval = options.TagCheckInterval;
        _beta = options.ProbabilisticEarlyRefreshBeta;
        _allowBackgroundCompletion = options.AllowTimedOutLoaderBackgroundCompletion;
        _defaultPolicy = new Policy(
            options.FailSafe,
            options.FailSafeMaxDuration,
            options.FailSafeThrottleDuration,
            options.LoaderSoftTimeout,
            options.LoaderHardTimeout,
            options.EagerRefreshThreshold,
            options.ProbabilisticEarlyRefresh ? _beta : 0);

        _l1 = new MemoryCache(new MemoryCacheOptions
        {
#pragma warning disable CS0618 // MemoryCache still reads its time from ISystemClock.
            Clock = new TimeProviderClock(_time),
#pragma warning restore CS0618
            SizeLimit = options.SizeLimit,
        });
        _l2 = distributedCache;
        _l2Buffers = distributedCache as IBufferDistributedCache;
        _l2Batch = distributedCache is null ? null : batchReader ?? distributedCache as IBatchDistributedCache;
        _health = distributedCache is null ? null : health ?? distributedCache as IDistributedCacheHealth;
        _logger = loggerFactory?.CreateLogger("CacheGuard") ?? NullLogger.Instance;
        _metrics = new CacheMetrics(_name, meterFactory);
        _serializers = serializers ?? new SerializerRegistry(null);
        _random = random ?? Random.Shared.NextDouble;
        if (options.DistributedLoadLock && loadLock is null)
        {
            throw new OptionsValidationException(options.Name, typeof(CoalescingCacheOptions), [
                "CoalescingCacheOptions.DistributedLoadLock is on, but no IDistributedLoadLock is configured: call .WithRedis(...) (CacheGuard.Redis) or .WithDistributedLoadLock(...) on the cache builder."]);
        }

        _breakerThreshold = options.DistributedCacheCircuitBreakerThreshold;
        _breakerWindow = options.DistributedCacheCircuitBreakerWindow;
        _breakerDuration = options.DistributedCacheCircuitBreakerDuration;
        _breaker = new CircuitBreaker(_breakerThreshold, _breakerWindow, _breakerDuration, _time);
        _maxPending = options.MaxPendingDistributedWrites;
        _loadLock = options.DistributedLoadLock ? loadLock : null;
        _loadLockTimeout = options.DistributedLoadLockTimeout;
        _backplane = backplane;
        _backplaneSubscription = backplane?.Subscribe(_name, this);
        if (_health is not null)
        {
            _health.AvailabilityChanged += OnL2AvailabilityChanged;
        }
    }

    /// <summary>Gets whether this cache has an L2 (false: the embedded, L1-only default).</summary>
    internal bool HasDistributedCache => _l2 is not null;

    /// <summary>Gets the cache's name, as reported in metrics and logs.</summary>
    internal string Name => _name;

    /// <summary>Gets whether L1 holds <paramref name="key"/>, without loading or counting anything: a test hook.</summary>
    internal bool IsInL1(string key) => _l1.TryGetValue(key, out _);

    /// <summary>Gets the number of background loads and refreshes running: a test hook.</summary>
    internal int BackgroundCount => Volatile.Read(ref _backgroundCount);

    /// <summary>Gets the number of keys with a load in flight: a test hook.</summary>
    internal int InFlightCount => _flights.Count;

    /// <summary>Gets how many callers wait for the load of <paramref name="key"/>: a test hook.</summary>
    internal int WaitersFor(string key) => _flights.WaitersFor(key);

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
            && _l1.TryGetValue(key, out found))
        {
            if (found is not CacheItem<T> item)
            {
                if (L1Slot.TryPlain(found!, out T value))
                {
                    if (_metrics.Hits.Enabled)
                    {
                        _metrics.HitL1();
                    }

                    return new ValueTask<T>(value);
                }

                return GetOrLoadSlow(key, state, loader, options, found, cancellationToken);
            }

            HitDecision decision = CheckHit(item, allowRefresh: true);
            if (decision <= HitDecision.ServeAndRefresh)
            {
                if (decision == HitDecision.ServeAndRefresh)
                {
                    StartRefresh(key, state, loader, options, item);
                }

                if (_metrics.Hits.Enabled)
                {
                    _metrics.HitL1();
                }

                return new ValueTask<T>(item.Value);
            }
        }

        return GetOrLoadSlow(key!, state, loader, options, found, cancellationToken);
    }

    public ValueTask SetAsync<T>(string key, T value, CacheEntryOptions? options = null, CancellationToken cancellationToken = default)
    {
        ValidateKey(key);
        options?.Validate();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        // A load in flight for this key read the data source before this write: its result must not overwrite it.
        _flights.Forget(key);
        long now = _time.GetUtcNow().UtcTicks;
        Lifetimes lifetimes = JitteredLifetimes(options?.Expiration, options?.LocalExpiration, options?.JitterRatio);
        ValueTask store = StoreAsync(key, value, Resolve(options), lifetimes, now, TimeSpan.Zero, options?.Tags, options?.Flags ?? CacheEntryFlags.None, flight: null, cancellationToken);
        return _backplane is null ? store : ThenPublish(this, store, key, cancellationToken);

        static async ValueTask ThenPublish(DefaultCoalescingCache self, ValueTask store, string key, CancellationToken cancellationToken)
        {
            await store.ConfigureAwait(false);
            await self.PublishAsync(key, null, cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask RemoveAsync(string key, CancellationToken cancellationToken = default)
    {
        ValidateKey(key);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        _flights.Forget(key);
        if (_l2 is null && _backplane is null)
        {
            _l1.Remove(key);
            return ValueTask.CompletedTask;
        }

        return RemoveFromBothAsync(this, key, cancellationToken);

        static async ValueTask RemoveFromBothAsync(DefaultCoalescingCache self, string key, CancellationToken cancellationToken)
        {
            // L2 first: removing L1 first would let a concurrent miss refill it from the old L2 entry.
            if (self._l2 is not null)
            {
                await self.RemoveL2Async(key, cancellationToken).ConfigureAwait(false);
            }

            self._l1.Remove(key);
            await self.PublishAsync(key, null, cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        if (_health is not null)
        {
            _health.AvailabilityChanged -= OnL2AvailabilityChanged;
        }

        _backplaneSubscription?.Dispose();
        _l1.Dispose();
        _metrics.Dispose();
    }

    /// <summary>The key as it may appear in a log line: only with <see cref="CoalescingCacheOptions.IncludeKeysInTelemetry"/>, as keys can be personal data.</summary>
    private string LogKey(string key) => _keysInTelemetry ? key : "(hidden)";

    private void ValidateKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length > _maxKeyLength)
        {
            throw new ArgumentException(
                $"The cache key '{key[..Math.Min(key.Length, 64)]}...' is {key.Length} characters long; the limit (CoalescingCacheOptions.MaxKeyLength) is {_maxKeyLength}.",
                nameof(key));
        }

        if (string.IsNullOrWhiteSpace(key))
        {
            throw new ArgumentException("The cache key must not be empty or whitespace.", nameof(key));
        }
    }
}
