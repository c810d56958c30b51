namespace CacheGuard.Redis;

/// <summary>The exception thrown when a command cannot be sent or answered because of the connection, not the command.</summary>
/// <remarks>Messages name the endpoint and the cause, never a password.</remarks>
public class RedisConnectionException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="RedisConnectionException"/> class.</summary>
    public RedisConnectionException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RedisConnectionException"/> class with a message.</summary>
    /// <param name="message">The message.</param>
    public RedisConnectionException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RedisConnectionException"/> class with a message and a cause.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public RedisConnectionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RedisConnectionException"/> class with a failure type.</summary>
    /// <param name="failureType">Why the command failed.</param>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause, if any.</param>
    public RedisConnectionException(RedisConnectionFailureType failureType, string message, Exception? innerException = null)
        : base(message, innerException) => FailureType = failureType;

    /// <summary>Gets why the command failed.</summary>
    /// <value>The failure type; <see cref="RedisConnectionFailureType.UnableToConnect"/> when not specified.</value>
    public RedisConnectionFailureType FailureType { get; }
}
