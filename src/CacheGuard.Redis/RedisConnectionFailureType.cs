namespace CacheGuard.Redis;

/// <summary>Says why a <see cref="RedisConnectionException"/> was thrown.</summary>
public enum RedisConnectionFailureType
{
    /// <summary>The server could not be reached or did not complete the handshake in time.</summary>
    UnableToConnect,

    /// <summary>An established connection was lost while the command was in flight.</summary>
    ConnectionLost,

    /// <summary>The connection is down and is being re-established in the background; the command was not sent.</summary>
    NotConnected,

    /// <summary>The server refused the credentials (<c>AUTH</c> failed).</summary>
    AuthenticationFailure,

    /// <summary>The server sent bytes that are not RESP2; the connection was closed.</summary>
    ProtocolError,

    /// <summary>The connection was disposed.</summary>
    Disposed,
}
