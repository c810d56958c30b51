using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace CacheGuard.Internal;

/// <summary>
/// The map of executions in flight, keyed. Shared by <see cref="SingleFlight{TKey, TValue}"/> and the cache.
/// </summary>
/// <remarks>
/// Every field of every <see cref="Flight{TKey}"/> marked "guarded" is read and written only under <see cref="_gate"/>.
/// No lock is held while work runs or while a task completes. A flight leaves the map exactly once: when its work
/// completes, or when every waiter has cancelled; and only if it is still the current flight for its key, so a
/// forgotten flight never removes its successor.
/// </remarks>
internal sealed class FlightTable<TKey>
    where TKey : notnull
{
    private readonly Lock _gate = new();
    private readonly Dictionary<TKey, Flight<TKey>> _flights; // guarded by _gate

    public FlightTable(IEqualityComparer<TKey>? comparer) => _flights = new Dictionary<TKey, Flight<TKey>>(comparer);

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _flights.Count;
            }
        }
    }

    /// <summary>
    /// Joins the flight in progress for <paramref name="key"/>, or starts a new one. Returns <see langword="null"/> and
    /// the existing flight in <paramref name="other"/> when that flight produces another type.
    /// </summary>
    public Flight<TKey, T>? JoinOrStart<T>(TKey key, bool cancellable, out bool started, out Flight<TKey>? other)
    {
        lock (_gate)
        {
            ref Flight<TKey>? slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_flights, key, out bool exists);
            if (exists)
            {
                started = false;
                if (slot is Flight<TKey, T> current)
                {
                    other = null;
                    current.Waiters++;
                    current.Pinned |= !cancellable;
                    return current;
                }

                other = slot;
                return null;
            }

            Flight<TKey, T> flight = (cancellable ? null : FlightPool<TKey, T>.Take(this, key)) ?? new Flight<TKey, T>(this, key, cancellable);
            slot = flight;
            started = true;
            other = null;
            return flight;
        }
    }

    /// <summary>Gets how many callers wait for the flight in progress for <paramref name="key"/> (0 if none): a test hook.</summary>
    public int WaitersFor(TKey key)
    {
        lock (_gate)
        {
            return _flights.TryGetValue(key, out Flight<TKey>? flight) ? flight.Waiters : 0;
        }
    }

    /// <summary>Starts a flight for <paramref name="key"/> only if none is in progress; the starter cannot cancel it.</summary>
    public Flight<TKey, T>? TryStart<T>(TKey key)
    {
        lock (_gate)
        {
            ref Flight<TKey>? slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_flights, key, out bool exists);
            if (exists)
            {
                return null;
            }

            var flight = new Flight<TKey, T>(this, key, cancellable: false);
            slot = flight;
            return flight;
        }
    }

    /// <summary>
    /// Keeps the record of a finished flight for this thread's next miss, when nothing else can still hold it: it
    /// completed, nobody joined it, nobody asked for its task, it had no cancellation source, and it left the table.
    /// Saves an allocation on every uncontended miss whose load completed synchronously.
    /// </summary>
    public void Recycle<T>(Flight<TKey, T> flight)
    {
        // No lock: a flight that is done and out of the table can no longer be joined, so these fields are final,
        // and Complete's lock already made them visible to the thread that completed it (the caller).
        if (ReferenceEquals(flight.Table, this) && flight.Done && flight.Waiters == 1 && flight.Completion is null && flight.WorkCancellation is null && !flight.InTable)
        {
            FlightPool<TKey, T>.Return(flight);
        }
    }

    /// <summary>Removes the flight for <paramref name="key"/> so later callers start a new one.</summary>
    public bool Forget(TKey key)
    {
        lock (_gate)
        {
            if (_flights.Remove(key, out Flight<TKey>? flight))
            {
                flight.InTable = false;
                flight.Superseded = true;
                return true;
            }

            return false;
        }
    }

    internal void Complete<T>(Flight<TKey, T> flight, T? value, Exception? error)
    {
        TaskCompletionSource<T>? completion;
        lock (_gate)
        {
            if (flight.Done)
            {
                return;
            }

            RemoveIfCurrent(flight);
            flight.Done = true;
            flight.Value = value;
            flight.Error = error;
            completion = flight.Completion;
        }

        // Outside the lock: completing runs no continuation inline (RunContinuationsAsynchronously), but keep
        // the lock's scope to bookkeeping only.
        if (completion is not null)
        {
            Publish(completion, value, error);
        }
    }

    internal Task<T> GetTask<T>(Flight<TKey, T> flight)
    {
        TaskCompletionSource<T>? created = null;
        lock (_gate)
        {
            if (flight.Completion is null)
            {
                created = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
                flight.Completion = created;
                if (!flight.Done)
                {
                    return created.Task;
                }
            }
            else
            {
                return flight.Completion.Task;
            }
        }

        // The flight finished before anyone asked for its task: publish its outcome into the new one.
        Publish(created, flight.Value, flight.Error);
        return created.Task;
    }

    internal void WaiterCancelled(Flight<TKey> flight)
    {
        CancellationTokenSource? abandon = null;
        lock (_gate)
        {
            if (flight.Done || flight.Abandoned)
            {
                return;
            }

            flight.Cancelled++;
            if (!flight.Pinned && flight.Cancelled >= flight.Waiters)
            {
                // Every waiter gave up: free the key for a fresh start and cancel the work.
                flight.Abandoned = true;
                RemoveIfCurrent(flight);
                abandon = flight.WorkCancellation;
            }
        }

        abandon?.Cancel();
    }

    private void RemoveIfCurrent(Flight<TKey> flight)
    {
        if (flight.InTable)
        {
            bool removed = _flights.Remove(flight.Key);
            Debug.Assert(removed, "A flight marked in the table must be in it.");
            flight.InTable = false;
        }
    }

    private static void Publish<T>(TaskCompletionSource<T> completion, T? value, Exception? error)
    {
        if (error is null)
        {
            completion.TrySetResult(value!);
        }
        else
        {
            completion.TrySetException(error);

            // Mark the exception observed: if every waiter cancelled, nobody awaits this task, and an unobserved
            // exception would surface later on the finalizer thread. Waiters that do await it still get it.
            _ = completion.Task.Exception;
        }
    }
}

/// <summary>One execution in flight for a key: the bookkeeping part, independent of the value type.</summary>
internal abstract class Flight<TKey>
    where TKey : notnull
{
    protected Flight(FlightTable<TKey> table, TKey key, bool cancellable)
    {
        Table = table;
        Key = key;
        Waiters = 1;
        Pinned = !cancellable;
        InTable = true;

        // A leader that cannot cancel pins the flight, so the work can never be cancelled: no source needed.
        WorkCancellation = cancellable ? new CancellationTokenSource() : null;
    }

    public FlightTable<TKey> Table { get; }

    public TKey Key { get; private set; }

    /// <summary>Gets the token handed to the work: cancelled only when every waiter has cancelled.</summary>
    public CancellationToken WorkToken => WorkCancellation?.Token ?? CancellationToken.None;

    internal CancellationTokenSource? WorkCancellation { get; }

    internal int Waiters; // guarded: callers that joined, the leader included

    internal int Cancelled; // guarded: waiters whose token fired

    internal bool Pinned; // guarded: a waiter that cannot cancel joined, so the work is never cancelled

    internal bool InTable; // guarded

    internal bool Done; // guarded

    internal bool Abandoned; // guarded

    /// <summary>Set when the key was forgotten, written or removed while this flight ran: its result must not be cached.</summary>
    internal volatile bool Superseded;

    /// <summary>Makes a recycled record a new, non-cancellable flight for <paramref name="key"/>.</summary>
    protected void Reset(TKey key)
    {
        Key = key;
        Waiters = 1;
        Cancelled = 0;
        Pinned = true;
        InTable = true;
        Done = false;
        Abandoned = false;
        Superseded = false;
    }

    /// <summary>Gets the type of value this flight produces.</summary>
    public abstract Type ValueType { get; }

    /// <summary>Gets whether at least one caller joined the leader (Go's <c>shared</c>). Final once the flight is done.</summary>
    public bool Shared
    {
        get
        {
            // Joining happens under the table lock and only while the flight is in the table; completion removes it
            // under the same lock before publishing, so once a waiter sees the result this count is final.
            return Volatile.Read(ref Waiters) > 1;
        }
    }
}

/// <summary>One execution in flight for a key, producing a <typeparamref name="T"/>.</summary>
internal sealed class Flight<TKey, T> : Flight<TKey>
    where TKey : notnull
{
    public Flight(FlightTable<TKey> table, TKey key, bool cancellable)
        : base(table, key, cancellable)
    {
    }

    internal T? Value; // guarded until Done, then immutable

    internal Exception? Error; // guarded until Done, then immutable

    /// <summary>Created on demand, under the lock, by the first caller that must wait: an uncontended flight that completes synchronously never allocates one.</summary>
    internal TaskCompletionSource<T>? Completion; // guarded

    public override Type ValueType => typeof(T);

    internal void Reuse(TKey key)
    {
        Reset(key);
        Value = default;
        Error = null;
        Completion = null;
    }

    public void Complete(T value) => Table.Complete(this, value, null);

    public void Fail(Exception error) => Table.Complete(this, default, error);

    /// <summary>Completes the flight with the outcome of a finished task.</summary>
    public void Complete(Task<T> finished)
    {
        Debug.Assert(finished.IsCompleted, "Only a finished task has an outcome.");
        if (finished.IsCompletedSuccessfully)
        {
            Complete(finished.Result);
        }
        else
        {
            Fail(ExtractError(finished));
        }
    }

    /// <summary>
    /// Waits for the flight's outcome. A caller whose token cannot be cancelled gets the one task every such caller
    /// shares (no allocation per caller); a cancellable caller gets its own wait, which counts towards abandoning the work.
    /// </summary>
    public Task<T> WaitAsync(CancellationToken cancellationToken)
    {
        Task<T> task = Table.GetTask(this);
        if (!cancellationToken.CanBeCanceled || task.IsCompleted)
        {
            return task;
        }

        return WaitCancellableAsync(this, task, cancellationToken);

        static async Task<T> WaitCancellableAsync(Flight<TKey, T> flight, Task<T> task, CancellationToken cancellationToken)
        {
            try
            {
                return await task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !task.IsCompleted)
            {
                // Counted where the waiter observes its own cancellation: a separate token registration could be
                // disposed by this very continuation before its callback ran.
                flight.Table.WaiterCancelled(flight);
                throw;
            }
        }
    }

    [SuppressMessage("Design", "CA1031", Justification = "Never thrown here: extracted to be rethrown to every waiter.")]
    internal static Exception ExtractError(Task task)
    {
        if (task.IsCanceled)
        {
            // Recover the token the work was cancelled with, so waiters see a faithful OperationCanceledException.
            try
            {
                task.GetAwaiter().GetResult();
            }
            catch (OperationCanceledException oce)
            {
                return oce;
            }

            return new TaskCanceledException(task);
        }

        AggregateException aggregate = task.Exception!;
        return aggregate.InnerExceptions.Count == 1 ? aggregate.InnerExceptions[0] : aggregate;
    }
}

/// <summary>One spare flight record per thread, table-checked: see <see cref="FlightTable{TKey}.Recycle{T}"/>.</summary>
internal static class FlightPool<TKey, T>
    where TKey : notnull
{
    [ThreadStatic]
    private static Flight<TKey, T>? t_spare;

    public static Flight<TKey, T>? Take(FlightTable<TKey> table, TKey key)
    {
        Flight<TKey, T>? spare = t_spare;
        if (spare is null || !ReferenceEquals(spare.Table, table))
        {
            return null;
        }

        t_spare = null;
        spare.Reuse(key);
        return spare;
    }

    public static void Return(Flight<TKey, T> flight)
    {
        flight.Reuse(default!); // drop the value and key now: a spare must not keep them alive
        t_spare = flight;
    }
}
