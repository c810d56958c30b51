namespace CacheGuard.Redis;

/// <summary>Configures the <see cref="RedisDistributedLoadLock"/> that <c>WithRedis</c> registers.</summary>
/// <remarks>The lock is used only when <c>CoalescingCacheOptions.DistributedLoadLock</c> is on (<c>.WithRedisLoadLock()</c> turns it on).</remarks>
public sealed class RedisLoadLockOptions
{
    /// <summary>Gets or sets how long a lock outlives an owner that stops renewing it (crashed, or cut off from Redis).</summary>
    /// <value>
    /// 5 seconds by default. The owner renews it every third of this while its loader runs, so a long load keeps the
    /// lock; a dead owner (or one whose release could not reach Redis) holds other nodes back for at most this long (or
    /// their <c>DistributedLoadLockTimeout</c>, whichever is shorter). Must be at least 100 ms.
    /// </value>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Gets or sets how often a node that waits checks whether the locks it waits for are gone, besides the release notification.</summary>
    /// <value>
    /// 100 ms by default: one pipelined <c>EXISTS</c> per node per interval, for every key it waits for, and only while
    /// it waits. The owner announces its release on pub/sub, so this matters when that notification is missed, the
    /// owner died and its lease expired, or a paused server answers again. Failed releases are retried at this interval
    /// too. Must be greater than zero.
    /// </value>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    internal void Validate()
    {
        if (LeaseDuration < TimeSpan.FromMilliseconds(100))
        {
            throw new ArgumentOutOfRangeException(nameof(LeaseDuration), LeaseDuration, $"{nameof(RedisLoadLockOptions)}.{nameof(LeaseDuration)} must be at least 100 ms.");
        }

        if (PollInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(PollInterval), PollInterval, $"{nameof(RedisLoadLockOptions)}.{nameof(PollInterval)} must be greater than zero.");
        }
    }
}
