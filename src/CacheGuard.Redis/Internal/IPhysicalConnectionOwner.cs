namespace CacheGuard.Redis.Internal;

/// <summary>What a <see cref="PhysicalConnection"/> reports to the slot that owns it.</summary>
internal interface IPhysicalConnectionOwner
{
    /// <summary>Called once, after the connection closed and failed its pending operations.</summary>
    void OnConnectionClosed(PhysicalConnection connection, RedisConnectionException reason);

    /// <summary>Called on the reader loop for each pub/sub message on a subscriber connection.</summary>
    void OnMessage(string channel, byte[] payload);
}
