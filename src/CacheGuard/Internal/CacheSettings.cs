using Microsoft.Extensions.Options;

namespace CacheGuard.Internal;

/// <summary>
/// The cache's options, validated and snapshotted once, with every derived value computed here: the default policy,
/// jittered lifetimes, key validation and how keys may appear in messages. Immutable; shared by every room.
/// </summary>
internal sealed class CacheSettings
{
    public CacheSettings(CoalescingCacheOptions options, TimeProvider time, Func<double> random)
    {
        ValidateOptionsResult validation = new CoalescingCacheOptionsValidator().Validate(options.Name, options);
        if (validation.Failed)
        {
            throw new OptionsValidationException(options.Name, typeof(CoalescingCacheOptions), validation.Failures);
        }

        Time = time;
        Random = random;
        Name = options.Name;
        MaxKeyLength = options.MaxKeyLength;
        DefaultExpiration = options.DefaultExpiration;
        DefaultLocalExpiration = options.DefaultLocalExpiration;
        NegativeExpiration = options.NegativeExpiration;
        L2Timeout = options.DistributedCacheTimeout;
        JitterRatio = options.JitterRatio;
        SizeLimit = options.SizeLimit;
        KeysInTelemetry = options.IncludeKeysInTelemetry;
        TagCheckInterval = options.TagCheckInterval;
        Beta = options.ProbabilisticEarlyRefreshBeta;
        AllowBackgroundCompletion = options.AllowTimedOutLoaderBackgroundCompletion;
        BreakerThreshold = options.DistributedCacheCircuitBreakerThreshold;
        BreakerWindow = options.DistributedCacheCircuitBreakerWindow;
        BreakerDuration = options.DistributedCacheCircuitBreakerDuration;
        MaxPendingWrites = options.MaxPendingDistributedWrites;
        LoadLockTimeout = options.DistributedLoadLockTimeout;
        Keys = new KeySpace(options.KeyPrefix, options.RegisteredName);
        DefaultPolicy = new Policy(
            options.FailSafe,
            options.FailSafeMaxDuration,
            options.FailSafeThrottleDuration,
            options.LoaderSoftTimeout,
            options.LoaderHardTimeout,
            options.EagerRefreshThreshold,
            options.ProbabilisticEarlyRefresh ? Beta : 0);
    }

    public TimeProvider Time { get; }

    /// <summary>Gets the source of uniform samples in [0, 1): jitter and XFetch.</summary>
    public Func<double> Random { get; }

    public string Name { get; }

    public KeySpace Keys { get; }

    public int MaxKeyLength { get; }

    public TimeSpan DefaultExpiration { get; }

    public TimeSpan? DefaultLocalExpiration { get; }

    public TimeSpan NegativeExpiration { get; }

    public TimeSpan L2Timeout { get; }

    public double JitterRatio { get; }

    public long? SizeLimit { get; }

    public bool KeysInTelemetry { get; }

    public TimeSpan TagCheckInterval { get; }

    public double Beta { get; }

    public bool AllowBackgroundCompletion { get; }

    public int BreakerThreshold { get; }

    public TimeSpan BreakerWindow { get; }

    public TimeSpan BreakerDuration { get; }

    public int MaxPendingWrites { get; }

    public TimeSpan LoadLockTimeout { get; }

    public Policy DefaultPolicy { get; }

    /// <summary>Gets the current time in UTC ticks, from the injected clock.</summary>
    public long NowTicks => Time.GetUtcNow().UtcTicks;

    /// <summary>The key as it may appear in a log line or exception message: only with IncludeKeysInTelemetry, as keys can be personal data.</summary>
    public string LogKey(string key) => KeysInTelemetry ? key : "(hidden)";

    /// <summary>How an exception message names a key: quoted only with IncludeKeysInTelemetry (<c>cache key 'k'</c>), else <c>a cache key</c>.</summary>
    public string KeyPhrase(string key) => KeysInTelemetry ? $"cache key '{key}'" : "a cache key";

    /// <summary>The exception for a key read as another type than it is held as; its message quotes the key only when allowed.</summary>
    public CacheTypeMismatchException TypeMismatch(string key, Type cachedType, Type requestedType) => new(key, cachedType, requestedType, KeysInTelemetry);

    /// <summary>Rejects a key that is null, empty, whitespace or too long; the message names the limit, and the key only when allowed.</summary>
    public void ValidateKey(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length > MaxKeyLength)
        {
            string shown = KeysInTelemetry ? $"The cache key '{key[..Math.Min(key.Length, 64)]}...'" : "A cache key";
            throw new ArgumentException($"{shown} is {key.Length} characters long; the limit (CoalescingCacheOptions.MaxKeyLength) is {MaxKeyLength}.", nameof(key));
        }

        if (string.IsNullOrWhiteSpace(key))
        {
            throw new ArgumentException("The cache key must not be empty or whitespace.", nameof(key));
        }
    }

    /// <summary>Resolves the non-lifetime policy of a call: options over the cache defaults.</summary>
    public Policy Resolve(CacheEntryOptions? options) => options is null
        ? DefaultPolicy
        : new Policy(
            options.FailSafe ?? DefaultPolicy.FailSafe,
            options.FailSafeMaxDuration ?? DefaultPolicy.FailSafeMax,
            options.FailSafeThrottleDuration ?? DefaultPolicy.FailSafeThrottle,
            options.LoaderSoftTimeout ?? DefaultPolicy.SoftTimeout,
            options.LoaderHardTimeout ?? DefaultPolicy.HardTimeout,
            options.EagerRefreshThreshold ?? DefaultPolicy.EagerRefreshThreshold,
            options.ProbabilisticEarlyRefresh is { } xfetch ? (xfetch ? Beta : 0) : DefaultPolicy.Beta);

    /// <summary>Resolves an entry's lifetimes, jittered with one random sample so L1 stays within L2.</summary>
    public Lifetimes JitteredLifetimes(TimeSpan? expiration, TimeSpan? localExpiration, double? jitterRatio)
    {
        TimeSpan distributed = expiration ?? DefaultExpiration;
        TimeSpan local = Min(localExpiration ?? DefaultLocalExpiration ?? distributed, distributed);
        double ratio = jitterRatio ?? JitterRatio;
        double sample = ratio > 0 ? Random() : 0;

        TimeSpan jitteredDistributed = Jitter.Apply(distributed, ratio, sample);
        TimeSpan jitteredNegative = Jitter.Apply(NegativeExpiration, ratio, sample);
        TimeSpan jitteredLocal = Min(Jitter.Apply(local, ratio, sample), jitteredDistributed);
        return new Lifetimes(jitteredDistributed, jitteredLocal, jitteredNegative, Min(jitteredNegative, jitteredLocal));
    }

    public static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>
    /// A timeout a timer can arm: timers take at most about 49.7 days, so a longer one (valid for a lifetime or loader
    /// timeout, which may be 3650 days) becomes "no timeout", which is what waiting that long means.
    /// </summary>
    public static TimeSpan Armable(TimeSpan timeout) => timeout.TotalMilliseconds < uint.MaxValue - 1 ? timeout : Timeout.InfiniteTimeSpan;
}

/// <summary>The jittered lifetimes of one write.</summary>
internal readonly record struct Lifetimes(TimeSpan Distributed, TimeSpan Local, TimeSpan Negative, TimeSpan NegativeLocal)
{
    /// <summary>Gets the L2 lifetime of a value, or of a cached "not found".</summary>
    public TimeSpan DistributedFor(bool notFound) => notFound ? Negative : Distributed;

    /// <summary>Gets the L1 lifetime of a value, or of a cached "not found".</summary>
    public TimeSpan LocalFor(bool notFound) => notFound ? NegativeLocal : Local;
}

/// <summary>A call's resilience policy: per-entry options over the cache defaults.</summary>
internal readonly record struct Policy(
    bool FailSafe,
    TimeSpan FailSafeMax,
    TimeSpan FailSafeThrottle,
    TimeSpan? SoftTimeout,
    TimeSpan? HardTimeout,
    double? EagerRefreshThreshold,
    double Beta)
{
    /// <summary>Gets whether entries under this policy need hit-time checks (and so an item in L1).</summary>
    public bool NeedsItem => FailSafe || EagerRefreshThreshold is not null || Beta > 0;

    /// <summary>Gets whether callers' waits are bounded by a loader timeout.</summary>
    public bool HasTimeouts => SoftTimeout is not null || HardTimeout is not null;
}
