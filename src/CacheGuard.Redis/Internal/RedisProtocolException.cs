namespace CacheGuard.Redis.Internal;

/// <summary>The server sent bytes that are not RESP2; the connection is closed and this becomes the inner exception.</summary>
internal sealed class RedisProtocolException : Exception
{
    public RedisProtocolException(string message)
        : base(message)
    {
    }
}
