namespace CacheGuard.Redis;

/// <summary>Which of a <see cref="RedisConnection"/>'s two sockets an event is about.</summary>
public enum RedisConnectionKind
{
    /// <summary>The multiplexed connection that carries every command.</summary>
    Interactive,

    /// <summary>The dedicated connection that carries subscriptions (a RESP2 subscribed connection runs nothing else).</summary>
    Subscription,
}
