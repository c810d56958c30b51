using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;

namespace CacheGuard.Internal;

/// <summary>Where a flight is in its life: the one state every rule about joining and completing reads.</summary>
internal enum FlightState : byte
{
    /// <summary>Running: joinable while current.</summary>
    Running,

    /// <summary>Every waiter cancelled: its work is cancelled and nobody joins it, but it has not completed yet.</summary>
    Abandoned,

    /// <summary>Completed with a value.</summary>
    Succeeded,

    /// <summary>Completed with an exception.</summary>
    Failed,
}

/// <summary>Where a flight is with its loader, for the one-loader-per-key rule.</summary>
internal enum LoaderStage : byte
{
    NotStarted,
    Running,
    Finished,
}

/// <summary>One execution in flight for a key: the bookkeeping part, independent of the value type.</summary>
internal abstract class Flight<TKey>
    where TKey : notnull
{
    protected Flight(FlightStripe<TKey> stripe, TKey key, in Ticket ticket, bool mayBeTagged, bool cancellable, string[]? knownTags)
    {
        Stripe = stripe;
        Key = key;
        Ticket = ticket;
        MayBeTagged = mayBeTagged;
        KnownTags = knownTags;
        Waiters = 1;
        Pinned = !cancellable;

        // A leader that cannot cancel pins the flight, so the work can never be cancelled by its waiters: no source needed.
        WorkCancellation = cancellable ? new CancellationTokenSource() : null;
    }

    /// <summary>Gets the stripe of the table the key belongs to: its lock guards the fields marked "guarded".</summary>
    public FlightStripe<TKey> Stripe { get; }

    public TKey Key { get; }

    /// <summary>Gets the versions the flight's work started from.</summary>
    public Ticket Ticket { get; }

    /// <summary>Gets whether the flight's result may carry tags (so a tag invalidation stops later callers from joining it).</summary>
    public bool MayBeTagged { get; }

    /// <summary>
    /// Gets the tags the flight's result will carry, when they were known as it started (the call's own, with a loader
    /// that cannot choose others): then only an invalidation of one of them stops later callers from joining it, the
    /// rule its result is published by. <see langword="null"/>: any tag invalidation does, if it <see cref="MayBeTagged"/>.
    /// </summary>
    public string[]? KnownTags { get; }

    /// <summary>Gets the token handed to the work: cancelled only when every waiter has cancelled.</summary>
    public CancellationToken WorkToken => WorkCancellation?.Token ?? CancellationToken.None;

    internal CancellationTokenSource? WorkCancellation { get; }

    internal FlightState State; // guarded

    internal LoaderStage Loader; // guarded

    internal int Waiters; // guarded: callers that joined, the leader included

    internal bool Pinned; // guarded: a waiter that cannot cancel joined, so the work is never cancelled

    /// <summary>The task running the flight's stages, once it went asynchronous (so it can be tracked as background work).</summary>
    internal Task? Run;

    private FlightExtras<TKey>? _extras;

    /// <summary>Gets the flight's rarely needed fields, created on first use (safely from any thread).</summary>
    private protected FlightExtras<TKey> Extras => Volatile.Read(ref _extras) ?? CreateExtras();

    private FlightExtras<TKey> CreateExtras()
    {
        var created = new FlightExtras<TKey>();
        return Interlocked.CompareExchange(ref _extras, created, null) ?? created;
    }

    /// <summary>Gets the rarely needed fields if any were set, without creating them.</summary>
    private protected FlightExtras<TKey>? ExtrasIfAny => Volatile.Read(ref _extras);

    /// <summary>Gets or sets the replaced flight whose loader must finish before this one's starts (guarded).</summary>
    internal Flight<TKey>? Predecessor
    {
        get => ExtrasIfAny?.Predecessor;
        set
        {
            if (value is not null || ExtrasIfAny is not null)
            {
                Extras.Predecessor = value;
            }
        }
    }

    /// <summary>Gets or sets the signal a successor waits on for this flight's loader to finish (guarded).</summary>
    internal TaskCompletionSource? LoaderFinished
    {
        get => ExtrasIfAny?.LoaderFinished;
        set => Extras.LoaderFinished = value;
    }

    /// <summary>Reads <see cref="State"/> without the lock: once it reads as completed, the outcome fields are visible.</summary>
    internal FlightState StateAcquired => (FlightState)Volatile.Read(ref Unsafe.As<FlightState, byte>(ref State));

    /// <summary>Sets <see cref="State"/> (under the lock) after the outcome fields, for readers without the lock.</summary>
    internal void ReleaseState(FlightState state) => Volatile.Write(ref Unsafe.As<FlightState, byte>(ref State), (byte)state);

    /// <summary>Gets or sets how many waiters' tokens fired (guarded).</summary>
    internal int Cancelled
    {
        get => ExtrasIfAny?.Cancelled ?? 0;
        set => Extras.Cancelled = value;
    }

    /// <summary>Gets whether the flight's run is tracked as background work (its callers stopped waiting).</summary>
    internal bool IsBackgrounded => ExtrasIfAny is { } extras && Volatile.Read(ref extras.Backgrounded) == 1;

    /// <summary>Marks the flight's run as background work; <see langword="true"/> only the first time.</summary>
    internal bool MarkBackgrounded() => Interlocked.Exchange(ref Extras.Backgrounded, 1) == 0;

    /// <summary>Marks that a caller's hard timeout was counted for this flight; <see langword="true"/> only the first time.</summary>
    internal bool MarkTimedOut() => Interlocked.Exchange(ref Extras.TimedOut, 1) == 0;

    /// <summary>Gets the type of value this flight produces.</summary>
    public abstract Type ValueType { get; }

    /// <summary>Gets whether at least one caller joined the leader (Go's <c>shared</c>). Final once the flight is done.</summary>
    public bool Shared => Volatile.Read(ref Waiters) > 1;
}

/// <summary>One execution in flight for a key, producing a <typeparamref name="T"/>.</summary>
/// <remarks>
/// The flight is also the <see cref="IValueTaskSource{TResult}"/> of the callers that await it without a token
/// (<see cref="WaitUntokenedAsync"/>): their continuations park on the flight, in pooled storage, and its outcome is read
/// from its fields. A flight is never reused, so every such <see cref="ValueTask{TResult}"/> stays valid, however often
/// it is awaited.
/// </remarks>
internal sealed class Flight<TKey, T> : Flight<TKey>, IValueTaskSource<T>
    where TKey : notnull
{
    public Flight(FlightStripe<TKey> stripe, TKey key, in Ticket ticket, bool mayBeTagged, bool cancellable, string[]? knownTags = null)
        : base(stripe, key, ticket, mayBeTagged, cancellable, knownTags)
    {
    }

    internal T? Value; // guarded until completed, then immutable

    internal Exception? Error; // guarded until completed, then immutable

    /// <summary>Made on demand, under the lock, by the first caller that must wait: an uncontended flight that completes synchronously never allocates one.</summary>
    internal FlightWaiters<T>? Waiting; // guarded

    /// <summary>Gets the value that may stand in for this flight's result (fail-safe, soft timeout), once known.</summary>
    public CacheItem<T>? Stale => (CacheItem<T>?)ExtrasIfAny?.Stale;

    /// <summary>Gets the last moment <see cref="Stale"/> may be served, in UTC ticks.</summary>
    public long StaleUntilTicks => ExtrasIfAny?.StaleUntilTicks ?? 0;

    /// <summary>Offers a stand-in, servable until <paramref name="untilTicks"/>; the first one offered is kept.</summary>
    public void OfferStale(CacheItem<T> item, long untilTicks)
    {
        FlightExtras<TKey> extras = Extras;
        if (extras.Stale is null)
        {
            extras.StaleUntilTicks = untilTicks;
            Volatile.Write(ref extras.Stale, item); // after its window: a reader that sees the item sees the window
        }
    }

    public override Type ValueType => typeof(T);

    public void Complete(T value) => FlightTable<TKey>.Complete(this, value, null);

    public void Fail(Exception error) => FlightTable<TKey>.Complete(this, default, error);

    /// <summary>Completes the flight with its loader's value, recording in the same step that its loader has finished.</summary>
    public void CompleteLoaded(T value) => FlightTable<TKey>.Complete(this, value, null, exitLoader: true);

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
        Task<T> task = FlightTable<TKey>.GetTask(this);
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
                FlightTable<TKey>.WaiterCancelled(flight);
                throw;
            }
        }
    }

    /// <summary>
    /// Waits for the flight's outcome without a token: the caller's continuation parks on the flight (no allocation per
    /// caller once the pool holds storage of the stampede's size). A token-less caller pins the flight, so it never
    /// needs to leave early.
    /// </summary>
    public ValueTask<T> WaitUntokenedAsync() => StateAcquired switch
    {
        FlightState.Succeeded => new ValueTask<T>(Value!),
        FlightState.Failed => ValueTask.FromException<T>(Error!),
        _ => new ValueTask<T>(this, 0),
    };

    ValueTaskSourceStatus IValueTaskSource<T>.GetStatus(short token) => StateAcquired switch
    {
        FlightState.Succeeded => ValueTaskSourceStatus.Succeeded,
        FlightState.Failed => ValueTaskSourceStatus.Faulted, // as the shared task reports it, an OperationCanceledException included
        _ => ValueTaskSourceStatus.Pending,
    };

    T IValueTaskSource<T>.GetResult(short token)
    {
        FlightState state = StateAcquired;
        if (state is not (FlightState.Succeeded or FlightState.Failed))
        {
            // Read before completion (sync-over-async on a pending ValueTask): block, as a task-backed one would.
            return FlightTable<TKey>.GetTask(this).GetAwaiter().GetResult();
        }

        if (state == FlightState.Failed)
        {
            ExceptionDispatchInfo.Throw(Error!);
        }

        return Value!;
    }

    void IValueTaskSource<T>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        FlightTable<TKey>.Park(this, continuation, state, flags);

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1031", Justification = "Never thrown here: extracted to be rethrown to every waiter.")]
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

/// <summary>
/// The fields of a <see cref="Flight{TKey}"/> that only some flights need (a replaced predecessor, cancelled waiters,
/// timeouts, a stale stand-in): apart, so the flight of a plain miss stays small. Those marked "guarded" follow the
/// flight's stripe lock, as they would on the flight.
/// </summary>
internal sealed class FlightExtras<TKey>
    where TKey : notnull
{
    internal Flight<TKey>? Predecessor; // guarded

    internal TaskCompletionSource? LoaderFinished; // guarded

    internal int Cancelled; // guarded

    internal int Backgrounded;

    internal int TimedOut;

    internal CacheItem? Stale;

    internal long StaleUntilTicks;
}
