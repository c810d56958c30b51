namespace CacheGuard.Redis;

/// <summary>A handler subscribed to a channel by <see cref="RedisConnection.SubscribeAsync"/>; dispose it to unsubscribe.</summary>
public sealed class RedisSubscription : IAsyncDisposable
{
    private readonly RedisConnection _connection;
    private readonly Action<string, ReadOnlyMemory<byte>> _handler;
    private int _disposed;

    internal RedisSubscription(RedisConnection connection, string channel, Action<string, ReadOnlyMemory<byte>> handler)
    {
        _connection = connection;
        Channel = channel;
        _handler = handler;
    }

    /// <summary>Gets the channel.</summary>
    /// <value>The channel name.</value>
    public string Channel { get; }

    /// <summary>Removes the handler; the last handler of a channel sends <c>UNSUBSCRIBE</c>.</summary>
    /// <param name="cancellationToken">Abandons the wait for the server's confirmation (the handler is removed regardless).</param>
    /// <returns>A task that completes when the server confirmed, or at once if the connection is down.</returns>
    public Task UnsubscribeAsync(CancellationToken cancellationToken = default) =>
        Interlocked.Exchange(ref _disposed, 1) == 0
            ? _connection.UnsubscribeAsync(Channel, _handler, cancellationToken)
            : Task.CompletedTask;

    /// <inheritdoc />
    public ValueTask DisposeAsync() => new(UnsubscribeAsync(CancellationToken.None));
}
