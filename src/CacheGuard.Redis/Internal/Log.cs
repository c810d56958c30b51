using Microsoft.Extensions.Logging;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// The Redis tier's log messages. Event ids 1000-1099 belong to CacheGuard.Redis; once shipped they never change, and a
/// retired id is never reused (1000-1007 and 1009 belonged to the retired own client).
/// </summary>
internal static partial class Log
{
    public const int UnsubscribeFailedId = 1008;
    public const int SlidingRefreshFailedId = 1010;
    public const int RedisUnavailableId = 1011;
    public const int RedisAvailableId = 1012;
    public const int ConnectionEventId = 1013;
    public const int RedisNotYetConnectedId = 1014;
    public const int MultiplexerDisposeFailedId = 1015;
    public const int ProbeFailedId = 1016;

    [LoggerMessage(UnsubscribeFailedId, LogLevel.Debug, "UNSUBSCRIBE {Channel} was not confirmed; the server drops the subscription with the connection anyway.")]
    public static partial void UnsubscribeFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(SlidingRefreshFailedId, LogLevel.Debug, "Refreshing the sliding expiration of batch-read entries failed; the entries were still returned.")]
    public static partial void SlidingRefreshFailed(ILogger logger, Exception exception);

    [LoggerMessage(RedisUnavailableId, LogLevel.Warning, "Redis at {EndPoints} is unavailable ({Reason}); the cache skips L2 and queues its writes until it is back.")]
    public static partial void RedisUnavailable(ILogger logger, string endPoints, string reason);

    [LoggerMessage(RedisAvailableId, LogLevel.Warning, "Redis at {EndPoints} is available again after {DownMilliseconds} ms; the cache uses L2 and replays its queued writes.")]
    public static partial void RedisAvailable(ILogger logger, string endPoints, long downMilliseconds);

    [LoggerMessage(ConnectionEventId, LogLevel.Debug, "Redis {ConnectionType} connection to {EndPoint}: {Event} ({FailureType}).")]
    public static partial void ConnectionEvent(ILogger logger, string connectionType, string endPoint, string @event, string failureType, Exception? exception);

    [LoggerMessage(RedisNotYetConnectedId, LogLevel.Information, "Redis at {EndPoints} did not answer the first connect; StackExchange.Redis keeps connecting in the background.")]
    public static partial void RedisNotYetConnected(ILogger logger, string endPoints);

    [LoggerMessage(MultiplexerDisposeFailedId, LogLevel.Debug, "Closing the Redis connection to {EndPoints} threw.")]
    public static partial void MultiplexerDisposeFailed(ILogger logger, string endPoints, Exception exception);

    [LoggerMessage(ProbeFailedId, LogLevel.Debug, "PING to Redis at {EndPoints} failed; probing again in {DelayMilliseconds} ms.")]
    public static partial void ProbeFailed(ILogger logger, string endPoints, long delayMilliseconds, Exception exception);
}
