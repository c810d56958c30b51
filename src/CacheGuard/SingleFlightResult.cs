namespace CacheGuard;

/// <summary>The outcome of <see cref="SingleFlight{TKey, TValue}.DoAsync(TKey, Func{CancellationToken, Task{TValue}}, CancellationToken)"/>.</summary>
/// <typeparam name="TValue">The value type.</typeparam>
/// <param name="Value">The value the execution produced.</param>
/// <param name="Shared">
/// <see langword="true"/> for every caller of an execution that at least one duplicate caller joined, the caller
/// that started it included (Go's <c>shared</c>); <see langword="false"/> for a lone caller.
/// </param>
public readonly record struct SingleFlightResult<TValue>(TValue Value, bool Shared);
