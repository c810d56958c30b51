namespace CacheGuard.Redis;

/// <summary>The exception thrown when the server answers a command with an error reply (<c>-ERR ...</c>).</summary>
public class RedisServerException : Exception
{
    /// <summary>Initializes a new instance of the <see cref="RedisServerException"/> class.</summary>
    public RedisServerException()
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RedisServerException"/> class with the server's error text.</summary>
    /// <param name="message">The error reply without its leading <c>-</c>, for example <c>NOSCRIPT No matching script.</c></param>
    public RedisServerException(string message)
        : base(message)
    {
    }

    /// <summary>Initializes a new instance of the <see cref="RedisServerException"/> class with a message and a cause.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public RedisServerException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Gets the error prefix: the first word of the reply (<c>ERR</c>, <c>WRONGTYPE</c>, <c>NOSCRIPT</c>, <c>NOAUTH</c>, <c>WRONGPASS</c>...).</summary>
    /// <value>The upper-case first word of <see cref="Exception.Message"/>.</value>
    public string ErrorPrefix
    {
        get
        {
            string message = Message;
            int space = message.IndexOf(' ', StringComparison.Ordinal);
            return space < 0 ? message : message[..space];
        }
    }
}
