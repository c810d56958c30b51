using Microsoft.Extensions.Options;

namespace CacheGuard.Internal;

/// <summary>Validates <see cref="CoalescingCacheOptions"/>; every message names the option and its limit.</summary>
internal sealed class CoalescingCacheOptionsValidator : IValidateOptions<CoalescingCacheOptions>
{
    /// <summary>The longest lifetime accepted anywhere: long enough for any cache, short enough that no clock overflows.</summary>
    internal static readonly TimeSpan MaxLifetime = TimeSpan.FromDays(3650);

    private readonly CoalescingCacheConfigurationPaths? _paths;

    public CoalescingCacheOptionsValidator()
    {
    }

    /// <summary>Used by DI: messages about options bound from configuration name the configuration path.</summary>
    public CoalescingCacheOptionsValidator(CoalescingCacheConfigurationPaths paths) => _paths = paths;

    public ValidateOptionsResult Validate(string? name, CoalescingCacheOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        List<string>? failures = null;
        void Fail(string message) => (failures ??= []).Add(_paths is null ? message : _paths.Locate(name, message));

        if (options.DefaultExpiration <= TimeSpan.Zero || options.DefaultExpiration > MaxLifetime)
        {
            Fail($"CoalescingCacheOptions.DefaultExpiration must be greater than zero and at most {MaxLifetime.TotalDays} days (was {options.DefaultExpiration}).");
        }

        if (options.DefaultLocalExpiration is { } local && (local <= TimeSpan.Zero || local > MaxLifetime))
        {
            Fail($"CoalescingCacheOptions.DefaultLocalExpiration must be null, or greater than zero and at most {MaxLifetime.TotalDays} days (was {local}).");
        }

        if (!(options.JitterRatio >= 0 && options.JitterRatio <= 1))
        {
            Fail($"CoalescingCacheOptions.JitterRatio must be between 0 and 1 (was {options.JitterRatio}).");
        }

        if (options.NegativeExpiration < TimeSpan.Zero || options.NegativeExpiration > MaxLifetime)
        {
            Fail($"CoalescingCacheOptions.NegativeExpiration must be zero (off) or positive, and at most {MaxLifetime.TotalDays} days (was {options.NegativeExpiration}).");
        }

        if (options.KeyPrefix is null)
        {
            Fail("CoalescingCacheOptions.KeyPrefix must not be null (use an empty string for no prefix).");
        }

        if (options.MaxKeyLength < 1)
        {
            Fail($"CoalescingCacheOptions.MaxKeyLength must be at least 1 (was {options.MaxKeyLength}).");
        }

        if (options.DistributedCacheTimeout <= TimeSpan.Zero || options.DistributedCacheTimeout > TimeSpan.FromMinutes(10))
        {
            Fail($"CoalescingCacheOptions.DistributedCacheTimeout must be greater than zero and at most 10 minutes (was {options.DistributedCacheTimeout}).");
        }

        void Positive(TimeSpan? value, string name)
        {
            if (value is { } v && (v <= TimeSpan.Zero || v > MaxLifetime))
            {
                Fail($"CoalescingCacheOptions.{name} must be greater than zero and at most {MaxLifetime.TotalDays} days (was {v}).");
            }
        }

        Positive(options.FailSafeMaxDuration, nameof(options.FailSafeMaxDuration));
        Positive(options.FailSafeThrottleDuration, nameof(options.FailSafeThrottleDuration));
        Positive(options.LoaderSoftTimeout, nameof(options.LoaderSoftTimeout));
        Positive(options.LoaderHardTimeout, nameof(options.LoaderHardTimeout));
        Positive(options.DistributedCacheCircuitBreakerWindow, nameof(options.DistributedCacheCircuitBreakerWindow));
        Positive(options.DistributedLoadLockTimeout, nameof(options.DistributedLoadLockTimeout));
        if (options.EagerRefreshThreshold is { } threshold && !(threshold > 0 && threshold < 1))
        {
            Fail($"CoalescingCacheOptions.EagerRefreshThreshold must be null (off) or between 0 and 1, exclusive (was {threshold}).");
        }

        if (!(options.ProbabilisticEarlyRefreshBeta > 0 && options.ProbabilisticEarlyRefreshBeta <= 100))
        {
            Fail($"CoalescingCacheOptions.ProbabilisticEarlyRefreshBeta must be greater than zero and at most 100 (was {options.ProbabilisticEarlyRefreshBeta}).");
        }

        if (options.DistributedCacheCircuitBreakerThreshold < 1)
        {
            Fail($"CoalescingCacheOptions.DistributedCacheCircuitBreakerThreshold must be at least 1 (was {options.DistributedCacheCircuitBreakerThreshold}).");
        }

        if (options.DistributedCacheCircuitBreakerDuration < TimeSpan.Zero || options.DistributedCacheCircuitBreakerDuration > MaxLifetime)
        {
            Fail($"CoalescingCacheOptions.DistributedCacheCircuitBreakerDuration must be zero (off) or positive, and at most {MaxLifetime.TotalDays} days (was {options.DistributedCacheCircuitBreakerDuration}).");
        }

        if (options.MaxPendingDistributedWrites < 1)
        {
            Fail($"CoalescingCacheOptions.MaxPendingDistributedWrites must be at least 1 (was {options.MaxPendingDistributedWrites}).");
        }

        if (options.TagCheckInterval <= TimeSpan.Zero || options.TagCheckInterval > MaxLifetime)
        {
            Fail($"CoalescingCacheOptions.TagCheckInterval must be greater than zero and at most {MaxLifetime.TotalDays} days (was {options.TagCheckInterval}).");
        }

        if (options.SizeLimit is { } size && size < 1)
        {
            Fail($"CoalescingCacheOptions.SizeLimit must be null (unbounded) or at least 1 (was {size}).");
        }

        if (string.IsNullOrWhiteSpace(options.Name))
        {
            Fail("CoalescingCacheOptions.Name must not be empty.");
        }

        return failures is null ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
