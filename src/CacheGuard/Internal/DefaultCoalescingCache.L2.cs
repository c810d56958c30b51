using System.Diagnostics;
using System.Buffers;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;

namespace CacheGuard.Internal;

/// <summary>
/// The distributed tier. Every call is bounded by <see cref="CoalescingCacheOptions.DistributedCacheTimeout"/> on the
/// injected clock; a failure, a timeout or an unusable payload is logged, counted and treated as a miss (reads) or
/// skipped (writes, removals). Nothing here throws to a caller, except the caller's own cancellation.
/// </summary>
internal sealed partial class DefaultCoalescingCache
{
    private const string OperationRead = "read";
    private const string OperationWrite = "write";
    private const string OperationRemove = "remove";

    private string L2Key(string key) => _keyPrefix.Length == 0 ? key : string.Concat(_keyPrefix, key);

    private async ValueTask<CacheItem<T>?> ReadL2Async<T>(string key)
    {
        if (!L2Allowed())
        {
            return null; // the breaker is open: a miss, without waiting on a failing L2
        }

        string l2Key = L2Key(key);
        using var deadline = new L2Deadline(_l2Timeout, _time, CancellationToken.None);
        using Activity? activity = CacheTelemetry.Start(CacheTelemetry.L2ReadActivity, _name, key, _keysInTelemetry);
        PooledBufferWriter? buffer = null;
        bool abandoned = false;
        try
        {
            ReadOnlyMemory<byte> data;
            if (_l2Buffers is not null)
            {
                buffer = new PooledBufferWriter();
                ValueTask<bool> pending = _l2Buffers.TryGetAsync(l2Key, buffer, deadline.Token);
                bool found = pending.IsCompletedSuccessfully ? pending.Result : await BoundAsync(pending.AsTask(), deadline.Token).ConfigureAwait(false);
                L2Succeeded();
                if (!found)
                {
                    return null;
                }

                data = buffer.WrittenMemory;
            }
            else
            {
                byte[]? bytes = await BoundAsync(_l2!.GetAsync(l2Key, deadline.Token), deadline.Token).ConfigureAwait(false);
                L2Succeeded();
                if (bytes is null)
                {
                    return null;
                }

                data = bytes;
            }

            return Decode<T>(key, data);
        }
        catch (OperationCanceledException) when (deadline.TimedOut)
        {
            // The abandoned call may still write into the buffer: never hand it back to the pool.
            abandoned = true;
            ReportL2Failure(OperationRead, key, null, activity);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !deadline.CallerCancelled)
        {
            ReportL2Failure(OperationRead, key, ex, activity);
            return null;
        }
        finally
        {
            if (!abandoned)
            {
                buffer?.Dispose();
            }
        }
    }

    private CacheItem<T>? Decode<T>(string key, ReadOnlyMemory<byte> data)
    {
        EnvelopeStatus status = Envelope.TryRead(data, out EnvelopeHeader header, out ReadOnlyMemory<byte> payload, out string[]? tags);
        if (status != EnvelopeStatus.Ok)
        {
            Reject(key, status switch
            {
                EnvelopeStatus.Foreign => "not a CacheGuard envelope",
                EnvelopeStatus.UnknownVersion => "an envelope version this build does not read",
                _ => "a truncated or inconsistent envelope",
            }, null);
            return null;
        }

        if (header.TypeTag != TypeTag<T>.Value)
        {
            Reject(key, $"stored as another type than '{typeof(T)}'", null);
            return null;
        }

        T value;
        if (header.NotFound)
        {
            value = default!;
        }
        else
        {
            try
            {
                value = _serializers.Get<T>().Deserialize(new ReadOnlySequence<byte>(payload));
            }
#pragma warning disable CA1031 // Any deserialization failure means the payload is unusable: a logged miss.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Reject(key, "the payload could not be deserialized", ex);
                return null;
            }
        }

        // A logically expired item is returned too: fail-safe may use it as a stand-in. Callers check ExpiresTicks.
        return new CacheItem<T>(value, header.CreatedTicks, header.ExpiresTicks, tags, header.LoadDurationTicks);
    }

    private void Reject(string key, string reason, Exception? exception)
    {
        _metrics.L2Error(OperationRead, "invalid_payload");
        Log.L2PayloadRejected(_logger, _name, LogKey(key), reason, exception);
    }

    /// <summary>Writes an item to L2. Returns <see langword="false"/> when it could not even be queued for replay, so L1 must not keep it.</summary>
    private async ValueTask<bool> WriteL2Async<T>(string key, CacheItem<T> item, TimeSpan lifetime, TimeSpan loadDuration, CancellationToken cancellationToken)
    {
        string l2Key = L2Key(key);
        PooledBufferWriter buffer = new();
        bool abandoned = false;
        using var deadline = new L2Deadline(_l2Timeout, _time, cancellationToken);
        using Activity? activity = CacheTelemetry.Start(CacheTelemetry.L2WriteActivity, _name, key, _keysInTelemetry);
        try
        {
            bool notFound = item.Value is null;
            var header = new EnvelopeHeader(item.CreatedTicks, item.ExpiresTicks, loadDuration.Ticks, TypeTag<T>.Value, notFound);
            IHybridCacheSerializer<T>? serializer = notFound ? null : _serializers.Get<T>();
            try
            {
                Envelope.Write(buffer, header, item.Value, serializer, item.Tags);
            }
            catch (Exception ex)
            {
                // The value cannot cross L2 (e.g. a cycle JSON refuses): it is served and kept in L1 only.
                _metrics.L2Error(OperationWrite, "serialization");
                Log.L2WriteFailed(_logger, _name, LogKey(key), ex);
                return true;
            }

            if (!L2Allowed())
            {
                return Defer(l2Key, key, buffer.ToArray(), _time.GetUtcNow() + lifetime);
            }

            var entryOptions = new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = lifetime };
            Task write = _l2Buffers is not null
                ? _l2Buffers.SetAsync(l2Key, new ReadOnlySequence<byte>(buffer.WrittenMemory), entryOptions, deadline.Token).AsTask()
                : _l2!.SetAsync(l2Key, buffer.ToArray(), entryOptions, deadline.Token);
            await BoundAsync(write, deadline.Token).ConfigureAwait(false);
            _pending.TryRemove(l2Key, out _); // this write supersedes any older one waiting for replay
            L2Succeeded();
            return true;
        }
        catch (OperationCanceledException) when (deadline.CallerCancelled)
        {
            throw;
        }
        catch (OperationCanceledException) when (deadline.TimedOut)
        {
            abandoned = true; // the abandoned call may still read the buffer
            ReportL2Failure(OperationWrite, key, null, activity);
            return Defer(l2Key, key, buffer.ToArray(), _time.GetUtcNow() + lifetime);
        }
        catch (Exception ex)
        {
            ReportL2Failure(OperationWrite, key, ex, activity);
            return Defer(l2Key, key, buffer.ToArray(), _time.GetUtcNow() + lifetime);
        }
        finally
        {
            if (!abandoned)
            {
                buffer.Dispose();
            }
        }
    }

    private async ValueTask RemoveL2Async(string key, CancellationToken cancellationToken)
    {
        string l2Key = L2Key(key);
        if (!L2Allowed())
        {
            Defer(l2Key, key, null, DateTimeOffset.MaxValue);
            return;
        }

        using var deadline = new L2Deadline(_l2Timeout, _time, cancellationToken);
        using Activity? activity = CacheTelemetry.Start(CacheTelemetry.L2RemoveActivity, _name, key, _keysInTelemetry);
        try
        {
            await BoundAsync(_l2!.RemoveAsync(l2Key, deadline.Token), deadline.Token).ConfigureAwait(false);
            _pending.TryRemove(l2Key, out _);
            L2Succeeded();
        }
        catch (OperationCanceledException) when (deadline.CallerCancelled)
        {
            throw;
        }
        catch (OperationCanceledException) when (deadline.TimedOut)
        {
            ReportL2Failure(OperationRemove, key, null, activity);
            Defer(l2Key, key, null, DateTimeOffset.MaxValue);
        }
        catch (Exception ex)
        {
            ReportL2Failure(OperationRemove, key, ex, activity);
            Defer(l2Key, key, null, DateTimeOffset.MaxValue);
        }
    }

    /// <summary>
    /// Records an L2 call that failed (<paramref name="exception"/>) or timed out (<see langword="null"/>): it counts
    /// towards the circuit breaker, marks the trace, increments <c>cacheguard.cache.l2.errors</c> and is logged.
    /// </summary>
    private void ReportL2Failure(string operation, string key, Exception? exception, Activity? activity = null)
    {
        L2Failed(exception);
        string errorType = exception is null ? "timeout" : "exception";
        CacheTelemetry.Fail(activity, errorType, exception);
        _metrics.L2Error(operation, errorType);
        switch (operation)
        {
            case OperationRead when exception is null:
                Log.L2ReadTimedOut(_logger, _name, LogKey(key), _l2Timeout);
                break;
            case OperationRead:
                Log.L2ReadFailed(_logger, _name, LogKey(key), exception);
                break;
            case OperationWrite when exception is null:
                Log.L2WriteTimedOut(_logger, _name, LogKey(key), _l2Timeout);
                break;
            case OperationWrite:
                Log.L2WriteFailed(_logger, _name, LogKey(key), exception);
                break;
            case OperationRemove when exception is null:
                Log.L2RemoveTimedOut(_logger, _name, LogKey(key), _l2Timeout);
                break;
            default:
                Log.L2RemoveFailed(_logger, _name, LogKey(key), exception!);
                break;
        }
    }

    /// <summary>
    /// Awaits an L2 call, but no longer than its deadline, even if the distributed cache ignores its token. A call
    /// left behind is watched so its eventual failure is logged instead of going unobserved.
    /// </summary>
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
                var self = (DefaultCoalescingCache)s!;
                Log.L2AbandonedCallFailed(self._logger, self._name, t.Exception!);
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
