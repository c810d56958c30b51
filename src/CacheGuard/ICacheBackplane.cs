namespace CacheGuard;

/// <summary>
/// Keeps the in-process caches (L1) of several nodes coherent: a node announces the keys it changed, and every other
/// node evicts them from its L1. CacheGuard.Redis provides one over Redis pub/sub.
/// </summary>
/// <remarks>
/// The cache publishes after every <c>SetAsync</c>, <c>RemoveAsync</c> and <c>RemoveByTagAsync</c> (a load changes nothing
/// other nodes hold, so it is not announced), and subscribes once, when it is created. Implementations must not throw from <see cref="PublishAsync"/> for transport
/// failures (log them instead: a lost message is bounded by the L1 lifetime) and must call
/// <see cref="ICacheInvalidationSink.OnMessagesMayHaveBeenLost"/> whenever they cannot be sure they saw every message.
/// </remarks>
public interface ICacheBackplane
{
    /// <summary>Announces a change made by this node.</summary>
    /// <param name="invalidation">What changed.</param>
    /// <param name="cancellationToken">Cancels the announcement.</param>
    /// <returns>A task that completes when the message is handed to the transport.</returns>
    ValueTask PublishAsync(CacheInvalidation invalidation, CancellationToken cancellationToken);

    /// <summary>Starts delivering other nodes' announcements to <paramref name="sink"/>.</summary>
    /// <param name="cacheName">The name of the cache subscribing; messages of other caches are not delivered to it.</param>
    /// <param name="sink">Receives the announcements.</param>
    /// <returns>Ends the subscription when disposed.</returns>
    IDisposable Subscribe(string cacheName, ICacheInvalidationSink sink);
}

/// <summary>A change one node announces to the others: a key, or a tag, of one cache.</summary>
/// <param name="CacheName">The name of the cache that changed.</param>
/// <param name="Key">The key that changed, or <see langword="null"/> when a tag was invalidated.</param>
/// <param name="Tag">The tag that was invalidated, or <see langword="null"/> when a key changed.</param>
public readonly record struct CacheInvalidation(string CacheName, string? Key, string? Tag);

/// <summary>Receives other nodes' announcements: implemented by the cache, called by an <see cref="ICacheBackplane"/>.</summary>
public interface ICacheInvalidationSink
{
    /// <summary>Gets the identity of this cache instance, so a backplane can skip the node's own messages.</summary>
    string InstanceId { get; }

    /// <summary>Evicts what another node changed from this node's L1.</summary>
    /// <param name="invalidation">What changed.</param>
    void OnInvalidation(CacheInvalidation invalidation);

    /// <summary>Drops this node's whole L1: called when messages may have been missed (a lost subscription).</summary>
    void OnMessagesMayHaveBeenLost();
}
