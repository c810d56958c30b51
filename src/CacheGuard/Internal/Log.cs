using Microsoft.Extensions.Logging;

namespace CacheGuard.Internal;

/// <summary>CacheGuard's log messages. Event ids are API: once shipped, never reuse or renumber one.</summary>
internal static partial class Log
{
    public const int L2ReadFailedId = 1;
    public const int L2ReadTimedOutId = 2;
    public const int L2WriteFailedId = 3;
    public const int L2WriteTimedOutId = 4;
    public const int L2PayloadRejectedId = 5;
    public const int L2RemoveFailedId = 6;
    public const int L2RemoveTimedOutId = 7;
    public const int LoaderFailedId = 8;
    public const int L2AbandonedCallFailedId = 9;
    public const int StaleValueServedId = 10;
    public const int BackgroundLoadFailedId = 11;
    public const int CircuitBreakerOpenedId = 12;
    public const int CircuitBreakerClosedId = 13;
    public const int PendingWriteDroppedId = 14;
    public const int PendingWritesReplayedId = 15;
    public const int LocalCacheClearedId = 16;
    public const int BackplanePublishFailedId = 17;
    public const int LoadLockFailedId = 18;
    public const int L2FailingId = 19;
    public const int L2RecoveredId = 20;
    public const int LoadLockWaitEndedId = 21;
    public const int LoadLockStillFailingId = 22;
    public const int PendingWriteSupersededId = 23;
    public const int PendingWritesSupersededId = 24;

    [LoggerMessage(EventId = L2ReadFailedId, Level = LogLevel.Debug, Message = "Cache '{CacheName}': reading key '{Key}' from the distributed cache failed; treated as a miss.")]
    public static partial void L2ReadFailed(ILogger logger, string cacheName, string key, Exception exception);

    [LoggerMessage(EventId = L2ReadTimedOutId, Level = LogLevel.Debug, Message = "Cache '{CacheName}': reading key '{Key}' from the distributed cache took longer than {Timeout}; treated as a miss.")]
    public static partial void L2ReadTimedOut(ILogger logger, string cacheName, string key, TimeSpan timeout);

    [LoggerMessage(EventId = L2WriteFailedId, Level = LogLevel.Debug, Message = "Cache '{CacheName}': writing key '{Key}' to the distributed cache failed; the value is served and kept in the local cache only.")]
    public static partial void L2WriteFailed(ILogger logger, string cacheName, string key, Exception exception);

    [LoggerMessage(EventId = L2WriteTimedOutId, Level = LogLevel.Debug, Message = "Cache '{CacheName}': writing key '{Key}' to the distributed cache took longer than {Timeout}; the value is served and kept in the local cache only.")]
    public static partial void L2WriteTimedOut(ILogger logger, string cacheName, string key, TimeSpan timeout);

    [LoggerMessage(EventId = L2PayloadRejectedId, Level = LogLevel.Warning, Message = "Cache '{CacheName}': the distributed cache entry for key '{Key}' was not usable ({Reason}); treated as a miss and overwritten by the next load.")]
    public static partial void L2PayloadRejected(ILogger logger, string cacheName, string key, string reason, Exception? exception);

    [LoggerMessage(EventId = L2RemoveFailedId, Level = LogLevel.Debug, Message = "Cache '{CacheName}': removing key '{Key}' from the distributed cache failed; it may be served from there until it expires.")]
    public static partial void L2RemoveFailed(ILogger logger, string cacheName, string key, Exception exception);

    [LoggerMessage(EventId = L2RemoveTimedOutId, Level = LogLevel.Debug, Message = "Cache '{CacheName}': removing key '{Key}' from the distributed cache took longer than {Timeout}; it may be served from there until it expires.")]
    public static partial void L2RemoveTimedOut(ILogger logger, string cacheName, string key, TimeSpan timeout);

    [LoggerMessage(EventId = LoaderFailedId, Level = LogLevel.Debug, Message = "Cache '{CacheName}': the loader for key '{Key}' failed; the exception reaches every caller waiting for it and is not cached.")]
    public static partial void LoaderFailed(ILogger logger, string cacheName, string key, Exception exception);

    [LoggerMessage(EventId = StaleValueServedId, Level = LogLevel.Warning, Message = "Cache '{CacheName}': served a stale value for key '{Key}' ({Reason}); it is re-armed for the fail-safe throttle duration.")]
    public static partial void StaleValueServed(ILogger logger, string cacheName, string key, string reason, Exception? exception);

    [LoggerMessage(EventId = BackgroundLoadFailedId, Level = LogLevel.Warning, Message = "Cache '{CacheName}': a background load of key '{Key}' failed; the value in the cache is unchanged.")]
    public static partial void BackgroundLoadFailed(ILogger logger, string cacheName, string key, Exception exception);

    [LoggerMessage(EventId = CircuitBreakerOpenedId, Level = LogLevel.Warning, Message = "Cache '{CacheName}': {Failures} distributed cache failures within {Window}; not calling it for {Duration}. Reads are misses and writes are queued meanwhile.")]
    public static partial void CircuitBreakerOpened(ILogger logger, string cacheName, int failures, TimeSpan window, TimeSpan duration);

    [LoggerMessage(EventId = CircuitBreakerClosedId, Level = LogLevel.Information, Message = "Cache '{CacheName}': the distributed cache answers again; calling it as usual.")]
    public static partial void CircuitBreakerClosed(ILogger logger, string cacheName);

    [LoggerMessage(EventId = PendingWriteDroppedId, Level = LogLevel.Warning, Message = "Cache '{CacheName}': too many distributed cache writes are pending; dropped the one for key '{Key}' and removed the key from the local cache too.")]
    public static partial void PendingWriteDropped(ILogger logger, string cacheName, string key);

    [LoggerMessage(EventId = PendingWritesReplayedId, Level = LogLevel.Information, Message = "Cache '{CacheName}': replayed {Count} distributed cache writes that had failed.")]
    public static partial void PendingWritesReplayed(ILogger logger, string cacheName, int count);

    [LoggerMessage(EventId = LocalCacheClearedId, Level = LogLevel.Warning, Message = "Cache '{CacheName}': the backplane may have missed invalidations, or another node asked for everything to be dropped; dropped the whole local cache.")]
    public static partial void LocalCacheCleared(ILogger logger, string cacheName);

    [LoggerMessage(EventId = BackplanePublishFailedId, Level = LogLevel.Warning, Message = "Cache '{CacheName}': announcing a change on the backplane failed; other nodes keep their copy until it expires.")]
    public static partial void BackplanePublishFailed(ILogger logger, string cacheName, Exception exception);

    [LoggerMessage(EventId = LoadLockFailedId, Level = LogLevel.Warning, Message = "Cache '{CacheName}': the distributed load lock for key '{Key}' could not be used; loading without it until it answers again (further failures at Debug level).")]
    public static partial void LoadLockFailed(ILogger logger, string cacheName, string key, Exception exception);

    [LoggerMessage(EventId = L2FailingId, Level = LogLevel.Warning, Message = "Cache '{CacheName}': the distributed cache is failing ({Operation}: {ErrorType}: {Reason}); reads are misses and writes are queued for replay until it answers again. Each failed call is logged at Debug level.")]
    public static partial void L2Failing(ILogger logger, string cacheName, string operation, string errorType, string reason);

    [LoggerMessage(EventId = L2RecoveredId, Level = LogLevel.Information, Message = "Cache '{CacheName}': the distributed cache answers again.")]
    public static partial void L2Recovered(ILogger logger, string cacheName);

    [LoggerMessage(EventId = LoadLockWaitEndedId, Level = LogLevel.Warning, Message = "Cache '{CacheName}': stopped waiting for another node's load of key '{Key}' ({Reason}); loading here.")]
    public static partial void LoadLockWaitEnded(ILogger logger, string cacheName, string key, string reason);

    [LoggerMessage(EventId = LoadLockStillFailingId, Level = LogLevel.Debug, Message = "Cache '{CacheName}': the distributed load lock for key '{Key}' could not be used; loading without it.")]
    public static partial void LoadLockStillFailing(ILogger logger, string cacheName, string key, Exception exception);

    [LoggerMessage(EventId = PendingWriteSupersededId, Level = LogLevel.Debug, Message = "Cache '{CacheName}': another node announced a write of key '{Key}'; this node's older write of it, waiting for replay, becomes a removal.")]
    public static partial void PendingWriteSuperseded(ILogger logger, string cacheName, string key);

    [LoggerMessage(EventId = PendingWritesSupersededId, Level = LogLevel.Information, Message = "Cache '{CacheName}': the backplane may have missed other nodes' changes, so {Count} distributed cache writes waiting for replay become removals (the keys load afresh).")]
    public static partial void PendingWritesSuperseded(ILogger logger, string cacheName, int count);

    [LoggerMessage(EventId = L2AbandonedCallFailedId, Level = LogLevel.Debug, Message = "Cache '{CacheName}': a distributed cache call abandoned after its timeout later failed.")]
    public static partial void L2AbandonedCallFailed(ILogger logger, string cacheName, Exception exception);
}
