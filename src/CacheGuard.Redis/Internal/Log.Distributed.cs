using Microsoft.Extensions.Logging;

namespace CacheGuard.Redis.Internal;

/// <summary>The backplane's (1100-1119) and the distributed load lock's (1120-1139) log messages. Never reuse an id.</summary>
internal static partial class Log
{
    public const int BackplaneSubscribeFailedId = 1100;
    public const int BackplaneSubscribedId = 1101;
    public const int BackplaneMessageMalformedId = 1102;
    public const int BackplanePublishFailedId = 1103;
    public const int BackplanePublishRecoveredId = 1104;
    public const int BackplaneSubscriptionLostId = 1105;
    public const int BackplaneSubscriptionRestoredId = 1106;
    public const int BackplaneQueueOverflowedId = 1107;
    public const int BackplaneEntryTooLargeId = 1108;
    public const int BackplaneSinkFailedId = 1109;
    public const int BackplanePublishRejectedId = 1110;
    public const int BackplaneResubscribeUnconfirmedId = 1111;

    public const int LoadLockRenewFailedId = 1120;
    public const int LoadLockLostId = 1121;
    public const int LoadLockReleaseFailedId = 1122;
    public const int LoadLockNotificationsUnavailableId = 1123;
    public const int LoadLockReleaseRetriedId = 1124;
    public const int LoadLockReleaseAbandonedId = 1125;
    public const int LoadLockNotifyFailedId = 1126;

    [LoggerMessage(BackplaneSubscribeFailedId, LogLevel.Warning, "Could not subscribe to backplane channel {Channel} (attempt {Attempt}); retrying. Until it succeeds this node's L1 does not see other nodes' changes.")]
    public static partial void BackplaneSubscribeFailed(ILogger logger, string channel, int attempt, Exception exception);

    [LoggerMessage(BackplaneSubscribedId, LogLevel.Debug, "Subscribed to backplane channel {Channel}.")]
    public static partial void BackplaneSubscribed(ILogger logger, string channel);

    [LoggerMessage(BackplaneMessageMalformedId, LogLevel.Warning, "Dropped a malformed message of {Length} bytes on backplane channel {Channel}: {Reason}.")]
    public static partial void BackplaneMessageMalformed(ILogger logger, string channel, int length, string reason);

    [LoggerMessage(BackplanePublishFailedId, LogLevel.Warning, "Publishing {Count} invalidations on backplane channel {Channel} failed; retrying until Redis is back (other nodes keep their copies meanwhile).")]
    public static partial void BackplanePublishFailed(ILogger logger, int count, string channel, Exception exception);

    [LoggerMessage(BackplanePublishRecoveredId, LogLevel.Information, "Publishing on backplane channel {Channel} works again after {Attempts} failed attempts.")]
    public static partial void BackplanePublishRecovered(ILogger logger, string channel, int attempts);

    [LoggerMessage(BackplaneSubscriptionLostId, LogLevel.Warning, "Lost the backplane subscription to {Channel}; other nodes' changes are missed until it is restored, then this node's L1 is dropped.")]
    public static partial void BackplaneSubscriptionLost(ILogger logger, string channel);

    [LoggerMessage(BackplaneSubscriptionRestoredId, LogLevel.Warning, "Backplane subscription to {Channel} restored after {BlindMilliseconds} ms without messages; dropped the L1 of {CacheCount} caches.")]
    public static partial void BackplaneSubscriptionRestored(ILogger logger, string channel, long blindMilliseconds, int cacheCount);

    [LoggerMessage(BackplaneQueueOverflowedId, LogLevel.Warning, "More than {Limit} invalidations of cache '{CacheName}' wait to be published on {Channel}; they are replaced by one 'drop everything' message.")]
    public static partial void BackplaneQueueOverflowed(ILogger logger, int limit, string cacheName, string channel);

    [LoggerMessage(BackplaneEntryTooLargeId, LogLevel.Warning, "An invalidation of cache '{CacheName}' does not fit in one {Limit}-byte backplane message; announcing 'drop everything' for that cache instead.")]
    public static partial void BackplaneEntryTooLarge(ILogger logger, string cacheName, int limit);

    [LoggerMessage(BackplaneSinkFailedId, LogLevel.Error, "Applying a backplane invalidation to cache '{CacheName}' threw.")]
    public static partial void BackplaneSinkFailed(ILogger logger, string cacheName, Exception exception);

    [LoggerMessage(BackplanePublishRejectedId, LogLevel.Error, "Redis rejected a backplane message on {Channel} ({Count} invalidations dropped).")]
    public static partial void BackplanePublishRejected(ILogger logger, string channel, int count, Exception exception);

    [LoggerMessage(BackplaneResubscribeUnconfirmedId, LogLevel.Debug, "The restored subscriber connection did not answer a ping for {Channel}; the caches' L1 was dropped again anyway.")]
    public static partial void BackplaneResubscribeUnconfirmed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(LoadLockRenewFailedId, LogLevel.Debug, "Extending the load lock {LockKey} failed; retrying at the next renewal.")]
    public static partial void LoadLockRenewFailed(ILogger logger, string lockKey, Exception exception);

    [LoggerMessage(LoadLockLostId, LogLevel.Warning, "The load lock {LockKey} expired or was taken over before its load finished; another node may load the same key.")]
    public static partial void LoadLockLost(ILogger logger, string lockKey);

    [LoggerMessage(LoadLockReleaseFailedId, LogLevel.Warning, "Releasing the load lock {LockKey} failed; retrying when Redis answers again (at the latest, the lease ends it).")]
    public static partial void LoadLockReleaseFailed(ILogger logger, string lockKey, Exception exception);

    [LoggerMessage(LoadLockNotificationsUnavailableId, LogLevel.Debug, "Could not subscribe to load-lock release notifications on {Channel}; waiters notice released keys at their next check instead.")]
    public static partial void LoadLockNotificationsUnavailable(ILogger logger, string channel, Exception exception);

    [LoggerMessage(LoadLockReleaseRetriedId, LogLevel.Information, "Released the load lock {LockKey} on a retry.")]
    public static partial void LoadLockReleaseRetried(ILogger logger, string lockKey);

    [LoggerMessage(LoadLockReleaseAbandonedId, LogLevel.Debug, "Gave up releasing the load lock {LockKey}: its lease has run out, so Redis has dropped it.")]
    public static partial void LoadLockReleaseAbandoned(ILogger logger, string lockKey);

    [LoggerMessage(LoadLockNotifyFailedId, LogLevel.Debug, "Released the load lock {LockKey} but could not announce it; waiters notice at their next check.")]
    public static partial void LoadLockNotifyFailed(ILogger logger, string lockKey, Exception exception);
}
