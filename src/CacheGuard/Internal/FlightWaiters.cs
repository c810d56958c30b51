using System.Buffers;
using System.Threading.Tasks.Sources;

namespace CacheGuard.Internal;

/// <summary>
/// Where a flight's callers wait, made by the first caller that has to: the continuations of callers awaiting the flight
/// itself (no cancellable token, no timeouts), and the shared task of callers that need a task (a token, timeouts, a
/// batch), made on demand. Every field is guarded by the flight's stripe lock until the flight completes.
/// </summary>
internal sealed class FlightWaiters<T>
{
    /// <summary>The task of the callers that need one, or <see langword="null"/> until one asks (guarded).</summary>
    internal TaskCompletionSource<T>? Shared;

    /// <summary>The continuations of the callers awaiting the flight itself (guarded).</summary>
    internal ParkedContinuations Parked;

    /// <summary>
    /// Hands the outcome to every waiter. Called once, by the step that completed the flight, outside the lock: no
    /// continuation parks on a completed flight, and a shared task asked for later is published by its own asker.
    /// </summary>
    public void Release(T? value, Exception? error)
    {
        if (Volatile.Read(ref Shared) is { } shared)
        {
            Publish(shared, value, error);
        }

        Parked.Release();
    }

    /// <summary>Completes a shared task with the flight's outcome (idempotent).</summary>
    public static void Publish(TaskCompletionSource<T> shared, T? value, Exception? error)
    {
        if (error is null)
        {
            shared.TrySetResult(value!);
        }
        else
        {
            shared.TrySetException(error);

            // Mark the exception observed: if every waiter cancelled, nobody awaits this task, and an unobserved
            // exception would surface later on the finalizer thread. Waiters that do await it still get it.
            _ = shared.Task.Exception;
        }
    }
}

/// <summary>
/// The continuations parked on one flight (as <see cref="IValueTaskSource{TResult}.OnCompleted"/> received them): the
/// first inline, the rest in an array rented from the shared pool. A task's own continuation list grows by doubling on
/// the heap, about 26 B per waiter in a 10,000-caller stampede; this storage goes back to the pool when the flight
/// completes, so once the pool holds arrays of a stampede's size its callers cost no allocation each.
/// </summary>
/// <remarks>
/// Not thread-safe: <see cref="Add"/> is called under the flight's stripe lock; <see cref="Release"/> once, after the
/// flight completed (no more adds). Continuations always run on the thread pool (or the context their awaiter captured),
/// never on the completing thread, as a task created with <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>
/// would run them.
/// </remarks>
internal struct ParkedContinuations
{
    private const int FirstArraySize = 4;

    /// <summary>
    /// A pool of its own, shared by every thread: the shared pool keeps an array per thread first, and the threads that
    /// return a stampede's arrays (the completing thread, the callers growing it) are rarely those that rent the next
    /// one, so its arrays would sit stranded on other threads. It keeps no more arrays of a size than were in use at once.
    /// </summary>
    private static readonly ArrayPool<Parked> Storage = ArrayPool<Parked>.Create(maxArrayLength: 1 << 20, maxArraysPerBucket: 64);

    private Parked _first;
    private Parked[]? _more;
    private int _count;

    /// <summary>Parks a continuation.</summary>
    public void Add(Action<object?> continuation, object? state, ValueTaskSourceOnCompletedFlags flags)
    {
        Parked parked = Capture(continuation, state, flags);
        if (_count == 0)
        {
            _first = parked;
        }
        else
        {
            if (_more is null || _count - 1 == _more.Length)
            {
                Grow();
            }

            _more![_count - 1] = parked;
        }

        _count++;
    }

    /// <summary>Schedules every parked continuation and returns the storage to the pool. Called once.</summary>
    public void Release()
    {
        if (_count == 0)
        {
            return;
        }

        Schedule(_first);
        if (_more is { } more)
        {
            for (int i = 0; i < _count - 1; i++)
            {
                Schedule(more[i]);
            }

            _more = null;
            Storage.Return(more, clearArray: true); // no references kept to the awaiters' frames
        }

        _first = default;
        _count = 0;
    }

    /// <summary>Schedules a continuation offered after its flight had completed.</summary>
    public static void ScheduleNow(Action<object?> continuation, object? state, ValueTaskSourceOnCompletedFlags flags) =>
        Schedule(Capture(continuation, state, flags));

    private void Grow()
    {
        Parked[] larger = Storage.Rent(_more is null ? FirstArraySize : _more.Length * 2);
        if (_more is { } smaller)
        {
            Array.Copy(smaller, larger, _count - 1);
            Storage.Return(smaller, clearArray: true);
        }

        _more = larger;
    }

    /// <summary>
    /// An <c>await</c> in an <c>async</c> method (the common case) captures nothing here: its frame carries its own
    /// execution context, and the thread pool queues the frame itself. A synchronization context or task scheduler, or
    /// an awaiter asking this source to flow the execution context, is captured in a small object (rare).
    /// </summary>
    private static Parked Capture(Action<object?> continuation, object? state, ValueTaskSourceOnCompletedFlags flags)
    {
        ExecutionContext? context = (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 ? ExecutionContext.Capture() : null;
        object? scheduler = null;
        if ((flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0)
        {
            if (SynchronizationContext.Current is { } sync && sync.GetType() != typeof(SynchronizationContext))
            {
                scheduler = sync;
            }
            else if (TaskScheduler.Current != TaskScheduler.Default)
            {
                scheduler = TaskScheduler.Current;
            }
        }

        return context is null && scheduler is null
            ? new Parked(continuation, state)
            : new Parked(CapturedContinuation.Run, new CapturedContinuation(continuation, state, context, scheduler));
    }

    private static void Schedule(in Parked parked)
    {
        if (parked.State is CapturedContinuation { Scheduler: { } scheduler } captured)
        {
            captured.Post(scheduler);
            return;
        }

        // An async method's continuation (the runtime's own delegate over its frame) is queued without allocating.
        ThreadPool.UnsafeQueueUserWorkItem(parked.Continuation, parked.State, preferLocal: true);
    }

    private readonly record struct Parked(Action<object?> Continuation, object? State);

    private sealed class CapturedContinuation(Action<object?> continuation, object? state, ExecutionContext? context, object? scheduler)
    {
        public static readonly Action<object?> Run = static s => ((CapturedContinuation)s!).Invoke();

        public object? Scheduler => scheduler;

        public void Post(object target)
        {
            if (target is SynchronizationContext sync)
            {
                sync.Post(static s => ((CapturedContinuation)s!).Invoke(), this);
            }
            else
            {
                _ = Task.Factory.StartNew(Run, this, CancellationToken.None, TaskCreationOptions.DenyChildAttach, (TaskScheduler)target);
            }
        }

        private void Invoke()
        {
            if (context is null)
            {
                continuation(state);
            }
            else
            {
                ExecutionContext.Run(context, static s => ((CapturedContinuation)s!).InvokeHere(), this);
            }
        }

        private void InvokeHere() => continuation(state);
    }
}
