using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace CacheGuard.Internal;

/// <summary>
/// The map of executions in flight, keyed. Shared by <see cref="SingleFlight{TKey, TValue}"/> and the cache, and the one
/// place two rules live: <b>a caller joins only a current flight</b> (running, not abandoned, and not superseded: the
/// table asks its owner), and <b>at most one loader runs per key</b> (a flight enters its loader only when it is the
/// key's current flight and the loader of the flight it replaced has finished).
/// </summary>
/// <remarks>
/// Keys are spread over stripes, each with its own lock and map: both rules are per key, and every flight of a key
/// (its predecessors included) lives in that key's stripe, so no operation crosses stripes and callers of different
/// keys rarely contend. Every field of a <see cref="Flight{TKey}"/> marked "guarded" is read and written only under its
/// stripe's lock (<see cref="Flight{TKey}.Stripe"/>). No lock is held while work runs or a task completes. The slot of
/// a key holds its latest flight until that flight completes or a newer one replaces it; a flight leaves its slot only
/// if it is still the slot's flight.
/// </remarks>
internal sealed class FlightTable<TKey>
    where TKey : notnull
{
    private const int StripeCount = 32; // a power of two

    private readonly FlightStripe<TKey>[] _stripes = new FlightStripe<TKey>[StripeCount];
    private readonly IEqualityComparer<TKey> _comparer;
    private readonly Func<Flight<TKey>, bool>? _isCurrent;

    /// <param name="comparer">Compares keys.</param>
    /// <param name="isCurrent">Says whether a running flight is still current (not superseded); <see langword="null"/>: always.</param>
    public FlightTable(IEqualityComparer<TKey>? comparer, Func<Flight<TKey>, bool>? isCurrent = null)
    {
        _comparer = comparer ?? EqualityComparer<TKey>.Default;
        for (int i = 0; i < _stripes.Length; i++)
        {
            _stripes[i] = new FlightStripe<TKey>(_comparer);
        }

        _isCurrent = isCurrent;
    }

    /// <summary>Gets the number of keys whose latest flight is running.</summary>
    public int Count
    {
        get
        {
            int count = 0;
            foreach (FlightStripe<TKey> stripe in _stripes)
            {
                lock (stripe.Gate)
                {
                    count += stripe.Flights.Count;
                }
            }

            return count;
        }
    }

    private FlightStripe<TKey> StripeOf(TKey key) => _stripes[_comparer.GetHashCode(key) & (StripeCount - 1)];

    /// <summary>
    /// Joins the key's current flight, or starts a new one (replacing a superseded or abandoned one). Returns
    /// <see langword="null"/>, with the running flight in <paramref name="other"/>, when the current flight produces another type.
    /// </summary>
    public Flight<TKey, T>? JoinOrStart<T>(TKey key, in Ticket ticket, bool mayBeTagged, bool cancellable, out bool started, out Flight<TKey>? other, string[]? knownTags = null)
    {
        FlightStripe<TKey> stripe = StripeOf(key);
        lock (stripe.Gate)
        {
            ref Flight<TKey>? slot = ref CollectionsMarshal.GetValueRefOrAddDefault(stripe.Flights, key, out bool exists);
            if (exists && IsJoinableLocked(slot!))
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

            var flight = new Flight<TKey, T>(stripe, key, ticket, mayBeTagged, cancellable, knownTags) { Predecessor = exists ? LoadingAncestorLocked(slot!) : null };
            slot = flight;
            started = true;
            other = null;
            return flight;
        }
    }

    /// <summary>Starts a flight for <paramref name="key"/> only if no current one is running; nobody waits on it, so it cannot be cancelled.</summary>
    public Flight<TKey, T>? TryStart<T>(TKey key, in Ticket ticket, bool mayBeTagged, string[]? knownTags = null)
    {
        FlightStripe<TKey> stripe = StripeOf(key);
        lock (stripe.Gate)
        {
            ref Flight<TKey>? slot = ref CollectionsMarshal.GetValueRefOrAddDefault(stripe.Flights, key, out bool exists);
            if (exists && IsJoinableLocked(slot!))
            {
                return null;
            }

            var flight = new Flight<TKey, T>(stripe, key, ticket, mayBeTagged, cancellable: false, knownTags) { Predecessor = exists ? LoadingAncestorLocked(slot!) : null, Waiters = 0 };
            slot = flight;
            return flight;
        }
    }

    /// <summary>Gets how many callers wait for the key's latest flight (0 if none): a test hook.</summary>
    public int WaitersFor(TKey key)
    {
        FlightStripe<TKey> stripe = StripeOf(key);
        lock (stripe.Gate)
        {
            return stripe.Flights.TryGetValue(key, out Flight<TKey>? flight) ? flight.Waiters : 0;
        }
    }

    /// <summary>
    /// Lets <paramref name="flight"/> run its loader: it waits for the loader of the flight it replaced, then enters if it
    /// is still the key's flight. Returns <see langword="false"/> when another flight replaced it: its callers should take
    /// the current flight's result instead.
    /// </summary>
    public static ValueTask<bool> EnterLoaderAsync(Flight<TKey> flight)
    {
        LoaderEntry entry = TryEnterLoader(flight, out Task? wait);
        return entry == LoaderEntry.MustWait ? WaitThenEnterAsync(flight, wait!) : new ValueTask<bool>(entry == LoaderEntry.Entered);

        static async ValueTask<bool> WaitThenEnterAsync(Flight<TKey> flight, Task wait)
        {
            while (true)
            {
                await wait.ConfigureAwait(false);
                LoaderEntry entry = TryEnterLoader(flight, out Task? next);
                if (entry != LoaderEntry.MustWait)
                {
                    return entry == LoaderEntry.Entered;
                }

                wait = next!;
            }
        }
    }

    /// <summary>One attempt to enter the loader stage; <see cref="LoaderEntry.MustWait"/> hands out the task to wait for first.</summary>
    private static LoaderEntry TryEnterLoader(Flight<TKey> flight, out Task? wait)
    {
        lock (flight.Stripe.Gate)
        {
            if (flight.Predecessor is { } predecessor && predecessor.Loader != LoaderStage.Finished)
            {
                wait = (predecessor.LoaderFinished ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                return LoaderEntry.MustWait;
            }

            wait = null;
            flight.Predecessor = null;
            if (!flight.Stripe.Flights.TryGetValue(flight.Key, out Flight<TKey>? current) || !ReferenceEquals(current, flight))
            {
                return LoaderEntry.Replaced;
            }

            flight.Loader = LoaderStage.Running;
            return LoaderEntry.Entered;
        }
    }

    /// <summary>Removes the key's flight so later callers start a new one; the removed flight still answers its own callers.</summary>
    public bool Forget(TKey key)
    {
        FlightStripe<TKey> stripe = StripeOf(key);
        lock (stripe.Gate)
        {
            return stripe.Flights.Remove(key);
        }
    }

    /// <summary>Records that the flight's loader has finished (whatever its outcome), releasing a successor waiting to load. Idempotent.</summary>
    public static void ExitLoader(Flight<TKey> flight)
    {
        TaskCompletionSource? waiting;
        lock (flight.Stripe.Gate)
        {
            waiting = ExitLoaderLocked(flight);
            if (flight.State is FlightState.Succeeded or FlightState.Failed)
            {
                RemoveIfCurrent(flight); // completed while its loader still ran: it kept the slot until now
            }
        }

        waiting?.TrySetResult();
    }

    /// <summary>Completes a flight: its value or error goes to every waiter, and later callers no longer join it.</summary>
    /// <param name="flight">The flight.</param>
    /// <param name="value">Its value, when <paramref name="error"/> is <see langword="null"/>.</param>
    /// <param name="error">Its error.</param>
    /// <param name="exitLoader">Also records that its loader has finished, in the same step (see <see cref="ExitLoader"/>).</param>
    internal static void Complete<T>(Flight<TKey, T> flight, T? value, Exception? error, bool exitLoader = false)
    {
        FlightWaiters<T>? waiting;
        TaskCompletionSource? loaderWaiting = null;
        lock (flight.Stripe.Gate)
        {
            if (exitLoader)
            {
                loaderWaiting = ExitLoaderLocked(flight);
            }

            if (flight.State != FlightState.Running && flight.State != FlightState.Abandoned)
            {
                if (exitLoader)
                {
                    RemoveIfCurrent(flight); // already answered (a hard timeout): it kept the slot until its loader ended
                }

                waiting = null;
            }
            else
            {
                if (flight.Loader != LoaderStage.Running)
                {
                    // A flight whose loader still runs (it failed its callers at a hard timeout) keeps the slot, not joinable,
                    // so the next flight for the key waits for that loader: one loader per key, always.
                    RemoveIfCurrent(flight);
                }

                flight.Value = value;
                flight.Error = error;
                flight.ReleaseState(error is null ? FlightState.Succeeded : FlightState.Failed); // last: token-less waiters read it without the lock
                waiting = flight.Waiting;
            }
        }

        loaderWaiting?.TrySetResult();
        waiting?.Release(value, error);
    }

    /// <summary>Parks the continuation of a caller awaiting <paramref name="flight"/> without a token; schedules it at once if the flight has completed.</summary>
    internal static void Park<T>(Flight<TKey, T> flight, Action<object?> continuation, object? state, ValueTaskSourceOnCompletedFlags flags)
    {
        lock (flight.Stripe.Gate)
        {
            if (flight.State is FlightState.Running or FlightState.Abandoned)
            {
                (flight.Waiting ??= new FlightWaiters<T>()).Parked.Add(continuation, state, flags);
                return;
            }
        }

        ParkedContinuations.ScheduleNow(continuation, state, flags);
    }

    internal static Task<T> GetTask<T>(Flight<TKey, T> flight)
    {
        TaskCompletionSource<T> created;
        lock (flight.Stripe.Gate)
        {
            FlightWaiters<T> waiting = flight.Waiting ??= new FlightWaiters<T>();
            if (waiting.Shared is { } existing)
            {
                return existing.Task;
            }

            waiting.Shared = created = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (flight.State is FlightState.Running or FlightState.Abandoned)
            {
                return created.Task;
            }
        }

        // The flight finished before anyone asked for its task: publish its outcome into the new one.
        FlightWaiters<T>.Publish(created, flight.Value, flight.Error);
        return created.Task;
    }

    internal static void WaiterCancelled(Flight<TKey> flight)
    {
        CancellationTokenSource? abandon = null;
        lock (flight.Stripe.Gate)
        {
            if (flight.State != FlightState.Running)
            {
                return;
            }

            flight.Cancelled++;
            if (!flight.Pinned && flight.Cancelled >= flight.Waiters)
            {
                // Every waiter gave up: no later caller joins it, and its work is cancelled. If its loader runs, it keeps
                // its slot until that loader ends, so a successor waits for it: one loader per key.
                flight.State = FlightState.Abandoned;
                abandon = flight.WorkCancellation;
                if (flight.Loader != LoaderStage.Running)
                {
                    RemoveIfCurrent(flight); // no loader of its own to wait for: the key is free at once
                }
            }
        }

        abandon?.Cancel();
    }

    private static TaskCompletionSource? ExitLoaderLocked(Flight<TKey> flight)
    {
        flight.Loader = LoaderStage.Finished;
        return flight.LoaderFinished;
    }

    private bool IsJoinableLocked(Flight<TKey> flight) => flight.State == FlightState.Running && (_isCurrent?.Invoke(flight) ?? true);

    /// <summary>The flight whose loader a new flight replacing <paramref name="replaced"/> must wait for, if any.</summary>
    private static Flight<TKey>? LoadingAncestorLocked(Flight<TKey> replaced) =>
        replaced.Loader == LoaderStage.Running ? replaced
        : replaced.Loader == LoaderStage.NotStarted && replaced.Predecessor is { Loader: LoaderStage.Running } ancestor ? ancestor
        : null;

    /// <summary>
    /// Takes a finished (or abandoned) flight out of its key's slot, if it is still there. When the flight it replaced
    /// still runs its loader, that one goes back in the slot (not joinable): the next flight for the key must wait for it.
    /// </summary>
    private static void RemoveIfCurrent(Flight<TKey> flight)
    {
        // One lookup in the common case (the flight is in its slot): take it out, and put back whatever else was there.
        Dictionary<TKey, Flight<TKey>> flights = flight.Stripe.Flights;
        if (!flights.Remove(flight.Key, out Flight<TKey>? removed))
        {
            return;
        }

        if (!ReferenceEquals(removed, flight))
        {
            flights.Add(flight.Key, removed);
        }
        else if (flight.Predecessor is { Loader: LoaderStage.Running } loading)
        {
            flights.Add(flight.Key, loading);
        }
    }
}

/// <summary>The outcome of one attempt to enter a flight's loader stage.</summary>
internal enum LoaderEntry
{
    Entered,
    Replaced,
    MustWait,
}

/// <summary>One stripe of a <see cref="FlightTable{TKey}"/>: the lock and the map of the keys that hash to it.</summary>
internal sealed class FlightStripe<TKey>(IEqualityComparer<TKey> comparer)
    where TKey : notnull
{
    /// <summary>Guards <see cref="Flights"/> and the guarded fields of every flight of this stripe's keys.</summary>
    public Lock Gate { get; } = new();

    public Dictionary<TKey, Flight<TKey>> Flights { get; } = new(comparer);
}

