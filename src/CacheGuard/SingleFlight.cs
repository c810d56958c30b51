using CacheGuard.Internal;

namespace CacheGuard;

/// <summary>
/// Duplicate call suppression: at most one execution of the work is in flight per key, and every caller that
/// asks for the key meanwhile waits for and shares its outcome. The .NET counterpart of Go's
/// <c>golang.org/x/sync/singleflight</c>.
/// </summary>
/// <remarks>
/// <para>
/// <c>Do</c> is <c>await DoAsync(...)</c>; <c>DoChan</c> is holding the returned task, and
/// <see cref="Task.WaitAsync(TimeSpan)"/> gives one caller a deadline without cancelling the shared work.
/// </para>
/// <para>
/// An exception from the work (thrown synchronously or asynchronously) reaches every waiter with its original type,
/// message and stack trace, and is not remembered: the next call runs the work again. A caller's token ends only
/// that caller's wait; the work's token is cancelled only when every waiter has cancelled, and the key is then free
/// for a fresh execution. Waiting never blocks a thread and no lock is held while the work runs.
/// </para>
/// <para>This type is thread-safe.</para>
/// </remarks>
/// <typeparam name="TKey">The key type.</typeparam>
/// <typeparam name="TValue">The value type the work produces.</typeparam>
public sealed class SingleFlight<TKey, TValue>
    where TKey : notnull
{
    private readonly FlightTable<TKey> _table;

    /// <summary>Initializes a new instance of the <see cref="SingleFlight{TKey, TValue}"/> class.</summary>
    /// <param name="comparer">Compares keys, or <see langword="null"/> for the default comparer.</param>
    public SingleFlight(IEqualityComparer<TKey>? comparer = null) => _table = new FlightTable<TKey>(comparer);

    /// <summary>Gets the number of keys with an execution in flight.</summary>
    public int InFlightCount => _table.Count;

    /// <summary>Runs <paramref name="work"/> for <paramref name="key"/> unless an execution is already in flight, and returns its outcome.</summary>
    /// <param name="key">The key that identifies duplicate calls.</param>
    /// <param name="work">The work; its token is cancelled only when every waiter has cancelled.</param>
    /// <param name="cancellationToken">Ends this caller's wait only.</param>
    /// <returns>The value and whether it was shared with another caller.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="work"/> is <see langword="null"/>.</exception>
    public Task<SingleFlightResult<TValue>> DoAsync(TKey key, Func<CancellationToken, Task<TValue>> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return DoAsync(key, work, static (w, ct) => w(ct), cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="work"/> with <paramref name="state"/> for <paramref name="key"/> unless an execution is
    /// already in flight, and returns its outcome. Pass a <see langword="static"/> lambda to avoid a closure.
    /// </summary>
    /// <typeparam name="TState">The type of the state passed to the work.</typeparam>
    /// <param name="key">The key that identifies duplicate calls.</param>
    /// <param name="state">Passed to <paramref name="work"/> when this call starts the execution.</param>
    /// <param name="work">The work; its token is cancelled only when every waiter has cancelled.</param>
    /// <param name="cancellationToken">Ends this caller's wait only.</param>
    /// <returns>The value and whether it was shared with another caller.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="work"/> is <see langword="null"/>.</exception>
    public Task<SingleFlightResult<TValue>> DoAsync<TState>(TKey key, TState state, Func<TState, CancellationToken, Task<TValue>> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(work);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<SingleFlightResult<TValue>>(cancellationToken);
        }

        Flight<TKey, TValue> flight = _table.JoinOrStart<TValue>(key, default, mayBeTagged: false, cancellationToken.CanBeCanceled, out bool started, out _)!;
        if (started)
        {
            Task<TValue> running;
            try
            {
                running = work(state, flight.WorkToken) ?? throw new InvalidOperationException("The work returned a null Task.");
            }
#pragma warning disable CA1031 // Any exception is the work's outcome and reaches every waiter.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                running = Task.FromException<TValue>(ex);
            }

            if (running.IsCompleted)
            {
                flight.Complete(running);
                if (!flight.Shared)
                {
                    // Uncontended and synchronous: no completion source, no continuation.
                    return running.IsCompletedSuccessfully
                        ? Task.FromResult(new SingleFlightResult<TValue>(running.Result, false))
                        : Task.FromException<SingleFlightResult<TValue>>(flight.Error!);
                }
            }
            else
            {
                running.ContinueWith(
                    static (t, s) => ((Flight<TKey, TValue>)s!).Complete(t),
                    flight,
                    CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously,
                    TaskScheduler.Default);
            }
        }

        return WithSharedAsync(flight, cancellationToken.CanBeCanceled ? new ValueTask<TValue>(flight.WaitAsync(cancellationToken)) : flight.WaitUntokenedAsync());

        static async Task<SingleFlightResult<TValue>> WithSharedAsync(Flight<TKey, TValue> flight, ValueTask<TValue> wait)
        {
            TValue value = await wait.ConfigureAwait(false);
            return new SingleFlightResult<TValue>(value, flight.Shared);
        }
    }

    /// <summary>
    /// Forgets the execution in flight for <paramref name="key"/>: later callers start a new one. The forgotten
    /// execution still completes for the callers already waiting on it, and its completion leaves the new one alone.
    /// </summary>
    /// <param name="key">The key to forget.</param>
    /// <returns><see langword="true"/> if an execution was in flight for the key.</returns>
    public bool Forget(TKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return _table.Forget(key);
    }
}
