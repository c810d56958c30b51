namespace CacheGuard.Redis.Internal;

/// <summary>
/// Waiting for a Redis reply with a token: when the token ends the wait first, the reply may still fail later (a timeout,
/// a lost connection); that failure is observed here, so it never surfaces as an unobserved task exception.
/// </summary>
internal static class Abandon
{
    public static async Task WaitObservedAsync(this Task task, CancellationToken cancellationToken)
    {
        try
        {
            await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!task.IsCompleted)
        {
            Observe(task);
            throw;
        }
    }

    public static async Task<T> WaitObservedAsync<T>(this Task<T> task, CancellationToken cancellationToken)
    {
        try
        {
            return await task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!task.IsCompleted)
        {
            Observe(task);
            throw;
        }
    }

    public static async Task<T> WaitObservedAsync<T>(this Task<T> task, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        try
        {
            return await task.WaitAsync(timeout, time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or TimeoutException && !task.IsCompleted)
        {
            Observe(task);
            throw;
        }
    }

    private static void Observe(Task task) =>
        _ = task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
}
