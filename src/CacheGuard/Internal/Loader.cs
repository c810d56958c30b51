namespace CacheGuard.Internal;

/// <summary>Either kind of loader a caller can pass, without a closure to adapt one to the other.</summary>
internal readonly struct Loader<TState, T>(Func<TState, CancellationToken, Task<T>>? plain, Func<TState, LoadContext<T>, CancellationToken, Task<T>>? contextual)
{
    public bool IsNull => plain is null && contextual is null;

    public bool WantsContext => contextual is not null;

    public Task<T> Invoke(TState state, LoadContext<T>? context, CancellationToken cancellationToken) =>
        plain is not null ? plain(state, cancellationToken) : contextual!(state, context!, cancellationToken);
}
