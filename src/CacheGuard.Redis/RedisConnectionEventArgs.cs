namespace CacheGuard.Redis;

/// <summary>Describes a connection loss or recovery raised by <see cref="RedisConnection"/>.</summary>
public sealed class RedisConnectionEventArgs : EventArgs
{
    /// <summary>Initializes a new instance of the <see cref="RedisConnectionEventArgs"/> class.</summary>
    /// <param name="kind">Which connection changed.</param>
    /// <param name="endPoint">The server, as <c>host:port</c>.</param>
    /// <param name="exception">Why the connection was lost, or <see langword="null"/> on recovery.</param>
    public RedisConnectionEventArgs(RedisConnectionKind kind, string endPoint, Exception? exception)
    {
        Kind = kind;
        EndPoint = endPoint;
        Exception = exception;
    }

    /// <summary>Gets which connection changed.</summary>
    /// <value>The connection kind.</value>
    public RedisConnectionKind Kind { get; }

    /// <summary>Gets the server.</summary>
    /// <value>The endpoint as <c>host:port</c>.</value>
    public string EndPoint { get; }

    /// <summary>Gets why the connection was lost.</summary>
    /// <value>The cause, or <see langword="null"/> when the connection was restored.</value>
    public Exception? Exception { get; }
}
