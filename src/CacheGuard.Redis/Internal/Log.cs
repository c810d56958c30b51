using Microsoft.Extensions.Logging;

namespace CacheGuard.Redis.Internal;

/// <summary>The Redis tier's log messages. Event ids 1000-1099 belong to CacheGuard.Redis; once shipped they never change.</summary>
internal static partial class Log
{
    public const int ConnectedId = 1000;
    public const int ConnectionLostId = 1001;
    public const int ConnectFailedId = 1002;
    public const int ReconnectFailedId = 1003;
    public const int ReconnectedId = 1004;
    public const int SubscriptionHandlerFailedId = 1005;
    public const int EventHandlerFailedId = 1006;
    public const int ReplyHandlerFailedId = 1007;
    public const int UnsubscribeFailedId = 1008;
    public const int CloseFailedId = 1009;
    public const int SlidingRefreshFailedId = 1010;

    [LoggerMessage(ConnectedId, LogLevel.Information, "Connected to Redis at {EndPoint} ({Kind} connection).")]
    public static partial void Connected(ILogger logger, string endPoint, RedisConnectionKind kind);

    [LoggerMessage(ConnectionLostId, LogLevel.Warning, "Lost the {Kind} connection to Redis at {EndPoint}; reconnecting in the background.")]
    public static partial void ConnectionLost(ILogger logger, RedisConnectionKind kind, string endPoint, Exception exception);

    [LoggerMessage(ConnectFailedId, LogLevel.Warning, "Could not open the {Kind} connection to Redis at {EndPoint}; retrying in the background.")]
    public static partial void ConnectFailed(ILogger logger, RedisConnectionKind kind, string endPoint, Exception exception);

    [LoggerMessage(ReconnectFailedId, LogLevel.Debug, "Reconnect attempt {Attempt} ({Kind}) to {EndPoint} failed: {Reason} Next attempt in {DelayMilliseconds} ms.")]
    public static partial void ReconnectFailed(ILogger logger, int attempt, RedisConnectionKind kind, string endPoint, string reason, long delayMilliseconds);

    [LoggerMessage(ReconnectedId, LogLevel.Information, "Re-established the {Kind} connection to Redis at {EndPoint} after {Attempts} attempts.")]
    public static partial void Reconnected(ILogger logger, RedisConnectionKind kind, string endPoint, int attempts);

    [LoggerMessage(SubscriptionHandlerFailedId, LogLevel.Error, "A handler for Redis channel {Channel} threw; other handlers still ran.")]
    public static partial void SubscriptionHandlerFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(EventHandlerFailedId, LogLevel.Error, "A {EventName} event handler threw.")]
    public static partial void EventHandlerFailed(ILogger logger, string eventName, Exception exception);

    [LoggerMessage(ReplyHandlerFailedId, LogLevel.Error, "Handling a reply from {EndPoint} threw; the command fails with that exception.")]
    public static partial void ReplyHandlerFailed(ILogger logger, string endPoint, Exception exception);

    [LoggerMessage(UnsubscribeFailedId, LogLevel.Debug, "UNSUBSCRIBE {Channel} was not confirmed; the server drops the subscription with the connection anyway.")]
    public static partial void UnsubscribeFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(CloseFailedId, LogLevel.Debug, "Closing the socket to {EndPoint} threw.")]
    public static partial void CloseFailed(ILogger logger, string endPoint, Exception exception);

    [LoggerMessage(SlidingRefreshFailedId, LogLevel.Debug, "Refreshing the sliding expiration of a batch-read entry failed; the entries were still returned.")]
    public static partial void SlidingRefreshFailed(ILogger logger, Exception exception);
}
