namespace CacheGuard.Redis;

/// <summary>The exception thrown when a command gets no reply within <see cref="RedisConfiguration.AsyncTimeout"/>.</summary>
/// <remarks>The connection stays open: the late reply is read and discarded when it arrives.</remarks>
public class RedisTimeoutException : TimeoutException
{
    /// <summary>Initializes a new instance of the <see cref="RedisTimeoutException"/> class.</summary>
    public RedisTimeoutException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RedisTimeoutException"/> class with a message.</summary>
    /// <param name="message">The message.</param>
    public RedisTimeoutException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RedisTimeoutException"/> class with a message and a cause.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public RedisTimeoutException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
