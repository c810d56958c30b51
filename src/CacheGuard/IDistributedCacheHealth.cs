namespace CacheGuard;

/// <summary>
/// Tells the cache whether its distributed cache (L2) can be reached right now, so that while it cannot, no caller waits
/// for an L2 call that is bound to fail. CacheGuard.Redis provides one from the connection multiplexer's state.
/// </summary>
/// <remarks>
/// <para>
/// While <see cref="IsAvailable"/> is <see langword="false"/>, L2 reads are misses and writes and removals are queued for
/// replay, without calling L2 at all. When <see cref="AvailabilityChanged"/> reports that L2 is back, the cache closes its
/// circuit breaker and replays the queued writes at once, instead of waiting for the breaker's probe.
/// </para>
/// <para>
/// An L2 call that fails with an exception for which <see cref="IsConnectionFailure"/> returns <see langword="true"/>
/// opens the circuit breaker at once, instead of counting towards its threshold. Implementations must be thread-safe
/// and cheap: <see cref="IsAvailable"/> is read before every L2 call.
/// </para>
/// </remarks>
public interface IDistributedCacheHealth
{
    /// <summary>Gets whether the distributed cache is connected and expected to answer.</summary>
    bool IsAvailable { get; }

    /// <summary>Occurs when <see cref="IsAvailable"/> changes; raised on any thread, never while holding a lock the cache could need.</summary>
    event EventHandler? AvailabilityChanged;

    /// <summary>Gets whether <paramref name="exception"/>, thrown by an L2 call, means the connection itself is lost.</summary>
    /// <param name="exception">The exception an L2 call threw.</param>
    /// <returns><see langword="true"/> for a connection-level failure; <see langword="false"/> for a failure of that call only.</returns>
    bool IsConnectionFailure(Exception exception);
}
