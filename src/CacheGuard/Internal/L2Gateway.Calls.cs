using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Internal;

/// <summary>
/// How one L2 call is made: bounded by its deadline even when the client ignores its token, watched when abandoned,
/// its pooled buffer returned only once the call is done, and a key the server refuses repaired once.
/// </summary>
internal sealed partial class L2Gateway
{
    /// <summary>Removes what a key holds and writes it again, once: for a key the server refused to overwrite (another kind of data).</summary>
    private async Task<bool> RepairAsync(string l2Key, byte[] value, DistributedCacheEntryOptions entryOptions)
    {
        using var deadline = new L2Deadline(_settings.L2Timeout, _settings.Time, CancellationToken.None);
        try
        {
            await BoundAsync(_l2.RemoveAsync(l2Key, deadline.Token), deadline.Token).ConfigureAwait(false);
            await BoundAsync(_l2.SetAsync(l2Key, value, entryOptions, deadline.Token), deadline.Token).ConfigureAwait(false);
            return true;
        }
#pragma warning disable CA1031 // The repair failed too: the original failure is reported by the caller.
        catch (Exception)
#pragma warning restore CA1031
        {
            return false;
        }
    }

    /// <summary>Returns a buffer to the pool once the L2 call that may read or write it has completed.</summary>
    private static void ReturnWhenDone(PooledBufferWriter? buffer, Task? call)
    {
        if (buffer is null)
        {
            return;
        }

        if (call is null || call.IsCompleted)
        {
            buffer.Dispose();
        }
        else
        {
            call.ContinueWith(static (_, b) => ((PooledBufferWriter)b!).Dispose(), buffer, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>Awaits an L2 call, but no longer than its deadline, even if the client ignores its token; a call left behind is watched.</summary>
    private async Task<TResult> BoundAsync<TResult>(Task<TResult> call, CancellationToken deadline)
    {
        try
        {
            return await call.WaitAsync(deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!call.IsCompleted)
        {
            Abandon(call);
            throw;
        }
    }

    private async Task BoundAsync(Task call, CancellationToken deadline)
    {
        try
        {
            await call.WaitAsync(deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!call.IsCompleted)
        {
            Abandon(call);
            throw;
        }
    }

    private void Abandon(Task call) =>
        call.ContinueWith(
            static (t, s) =>
            {
                var self = (L2Gateway)s!;
                Log.L2AbandonedCallFailed(self._logger, self._settings.Name, t.Exception!);
            },
            this,
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);

    /// <summary>One L2 call's deadline on the injected clock, also ended by the caller's token when there is one.</summary>
    private sealed class L2Deadline : IDisposable
    {
        private readonly CancellationTokenSource _timeout;
        private readonly CancellationToken _caller;
        private readonly CancellationTokenSource? _linked;

        public L2Deadline(TimeSpan timeout, TimeProvider time, CancellationToken caller)
        {
            _timeout = new CancellationTokenSource(timeout, time);
            _caller = caller;
            if (caller.CanBeCanceled)
            {
                _linked = CancellationTokenSource.CreateLinkedTokenSource(_timeout.Token, caller);
            }
        }

        public CancellationToken Token => _linked?.Token ?? _timeout.Token;

        public bool TimedOut => _timeout.IsCancellationRequested && !_caller.IsCancellationRequested;

        public bool CallerCancelled => _caller.IsCancellationRequested;

        public void Dispose()
        {
            _linked?.Dispose();
            _timeout.Dispose();
        }
    }
}
