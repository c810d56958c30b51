using System.Collections.Concurrent;

namespace CacheGuard.Soak;

/// <summary>How a failed call is judged by the caller-errors invariant.</summary>
internal enum ErrorKind
{
    /// <summary>The loader's own exception (<see cref="SimulatedDbException"/>), passed to its callers: allowed.</summary>
    LoaderError,

    /// <summary><c>LoaderHardTimeout</c> passed: allowed by the policy.</summary>
    HardTimeout,

    /// <summary>The caller cancelled its own token: allowed.</summary>
    Cancelled,

    /// <summary>Anything else: a violation.</summary>
    Unexpected,
}

/// <summary>
/// The caller-errors invariant: every exception a call throws is classified; anything but the loader's own
/// exception, a hard-timeout <see cref="TimeoutException"/> or the caller's own cancellation is unexpected, counted,
/// and its first occurrences (per exception type and operation) are written to the log with their stack traces.
/// </summary>
internal sealed class CallErrors(SoakLog log)
{
    private const int SamplesPerType = 3;

    private readonly ConcurrentDictionary<string, int> _samples = new(StringComparer.Ordinal);
    private readonly long[] _counts = new long[4];

    public long Count(ErrorKind kind) => Interlocked.Read(ref _counts[(int)kind]);

    /// <summary>Distinct unexpected exception types per operation, with counts, for the report.</summary>
    public IReadOnlyDictionary<string, int> UnexpectedTypes => _samples;

    public static ErrorKind Classify(Exception exception, bool callerCancelled)
    {
        if (exception is AggregateException { InnerExceptions.Count: 1 } aggregate)
        {
            exception = aggregate.InnerExceptions[0];
        }

        return exception switch
        {
            SimulatedDbException => ErrorKind.LoaderError,
            TimeoutException timeout when timeout.Message.Contains("LoaderHardTimeout", StringComparison.Ordinal) => ErrorKind.HardTimeout,
            OperationCanceledException when callerCancelled => ErrorKind.Cancelled,
            _ => ErrorKind.Unexpected,
        };
    }

    /// <summary>Counts a failed call and returns its kind.</summary>
    public ErrorKind Record(int node, string operation, string key, Exception exception, bool callerCancelled)
    {
        ErrorKind kind = Classify(exception, callerCancelled);
        Interlocked.Increment(ref _counts[(int)kind]);
        if (kind == ErrorKind.Unexpected)
        {
            string type = $"{operation}: {exception.GetType().FullName}";
            int seen = _samples.AddOrUpdate(type, 1, static (_, n) => n + 1);
            if (seen <= SamplesPerType)
            {
                log.Write($"VIOLATION caller error: node{node} {operation}({key}) threw {exception}", console: seen == 1);
            }
        }

        return kind;
    }

    /// <summary>Counts an unexpected error that is not an exception (an invalid value), under <paramref name="what"/>.</summary>
    public void RecordInvalid(string what)
    {
        Interlocked.Increment(ref _counts[(int)ErrorKind.Unexpected]);
        _samples.AddOrUpdate(what, 1, static (_, n) => n + 1);
    }
}
