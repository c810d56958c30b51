using System.Diagnostics;

namespace CacheGuard.Internal;

/// <summary>
/// What callers get when the loader is slow or fails: each waits within its own soft and hard timeouts, and is served a
/// stale value where fail-safe or a soft timeout allows one, or a <see cref="TimeoutException"/>.
/// </summary>
internal sealed partial class MissPipeline
{
    /// <summary>Hands a stale value to the flight's callers and re-arms it in L1 for the throttle, so a failing source is not hammered.</summary>
    private void ServeStale<T>(Flight<string, T> flight, CacheItem<T> stale, in Policy policy, CacheEntryFlags flags, string reason, Exception? error)
    {
        StaleServed(flight.Key, reason, error);
        _publisher.PublishLocal(flight.Key, flight.Ticket, stale, policy, policy.FailSafeThrottle, flags, rearm: true);
        flight.Complete(stale.Value);
    }

    private void StaleServed(string key, string reason, Exception? error)
    {
        _metrics.StaleServed(reason);
        string logKey = _settings.LogKey(key);
        Log.StaleValueServed(_logger, _settings.Name, logKey, reason, error);
    }

    /// <summary>The flight's stand-in, if it is still allowed now: within its window (fail-safe's, or its own freshness) and not invalidated by a tag since.</summary>
    private CacheItem<T>? UsableStale<T>(Flight<string, T> flight) =>
        flight.Stale is { } stale && _settings.NowTicks < flight.StaleUntilTicks && _tags.Allows(stale.Tags, stale.CreatedTicks) ? stale : null;

    private TimeoutException HardTimeout(string key, in Policy policy) =>
        new($"The loader for {_settings.KeyPhrase(key)} did not complete within LoaderHardTimeout ({policy.HardTimeout}).");

    /// <summary>Waits for a flight's outcome within this caller's own soft and hard timeouts (measured from this call).</summary>
    private ValueTask<T> WaitAsync<T>(Flight<string, T> flight, in Policy policy, CancellationToken cancellationToken)
    {
        bool callerHard = policy.HardTimeout is not null && _settings.AllowBackgroundCompletion;
        return policy.SoftTimeout is not null || callerHard ? WaitWithTimeoutsAsync(flight, policy, callerHard, cancellationToken)
            : cancellationToken.CanBeCanceled ? new ValueTask<T>(flight.WaitAsync(cancellationToken))
            : flight.WaitUntokenedAsync();
    }

    private async ValueTask<T> WaitWithTimeoutsAsync<T>(Flight<string, T> flight, Policy policy, bool callerHard, CancellationToken cancellationToken)
    {
        long started = _settings.Time.GetTimestamp();
        Task<T> result = flight.WaitAsync(cancellationToken);
        if (policy.SoftTimeout is { } soft && (policy.HardTimeout is not { } limit || soft < limit) && !result.IsCompleted)
        {
            await CompletesWithinAsync(result, soft).ConfigureAwait(false);
            if (!result.IsCompleted && UsableStale(flight) is { } stale)
            {
                StaleServed(flight.Key, "soft_timeout", null);
                TrackInBackground(flight);
                ObserveAbandoned(result);
                return stale.Value;
            }
        }

        if (callerHard && !result.IsCompleted)
        {
            TimeSpan left = policy.HardTimeout!.Value - _settings.Time.GetElapsedTime(started);
            if (left > TimeSpan.Zero)
            {
                await CompletesWithinAsync(result, left).ConfigureAwait(false);
            }

            if (!result.IsCompleted)
            {
                // This caller stops waiting; the load goes on for the cache's sake, and later callers join it.
                if (flight.MarkTimedOut())
                {
                    _metrics.LoaderTimeout();
                }

                TrackInBackground(flight);
                ObserveAbandoned(result);
                if (policy.FailSafe && UsableStale(flight) is { } stale)
                {
                    StaleServed(flight.Key, "hard_timeout", null);
                    return stale.Value;
                }

                throw HardTimeout(flight.Key, policy);
            }
        }

        return await result.ConfigureAwait(false);
    }

    /// <summary>A caller's wait it stopped awaiting (it got a stale value or its timeout): if the load fails later, that failure is observed here.</summary>
    private static void ObserveAbandoned(Task wait) =>
        wait.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>Waits until <paramref name="task"/> completes or <paramref name="timeout"/> passes on the injected clock; never throws.</summary>
    private Task CompletesWithinAsync(Task task, TimeSpan timeout) => AwaitQuietly(task.WaitAsync(CacheSettings.Armable(timeout), _settings.Time));

    private static async Task AwaitQuietly(Task task)
    {
        await task.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _ = task.Exception; // observed: a timeout here is an answer, not an error
    }
}
