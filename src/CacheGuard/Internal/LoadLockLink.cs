using Microsoft.Extensions.Logging;

namespace CacheGuard.Internal;

/// <summary>
/// The distributed load lock, with its fault policy in one place. After an L2 miss a node either takes the key's lock
/// (and loads), or waits for the owner's result in L2, or loads without the lock:
/// <list type="bullet">
/// <item><b>unavailable</b> (L2 down, the breaker open, or the lock call fails): load locally; liveness wins;</item>
/// <item><b>held by a live owner</b>: wait for its release or its value, re-reading L2 at each wake-up, at most
/// <see cref="CoalescingCacheOptions.DistributedLoadLockTimeout"/>, then load locally;</item>
/// <item><b>released without a value, or the owner's lease expired</b>: take the lock over and load.</item>
/// </list>
/// Each path is counted (<c>cacheguard.cache.load_lock</c>, tag <c>cache.lock_outcome</c>) and logged.
/// </summary>
internal sealed class LoadLockLink(CacheSettings settings, IDistributedLoadLock? loadLock, L2Gateway? l2, TagIndex tags, CacheMetrics metrics, ILogger logger)
{
    private readonly CacheSettings _settings = settings;
    private readonly IDistributedLoadLock? _lock = l2 is null ? null : loadLock;
    private readonly L2Gateway? _l2 = l2;
    private readonly TagIndex _tags = tags;
    private readonly CacheMetrics _metrics = metrics;
    private readonly ILogger _logger = logger;
    private int _failing;

    public bool Enabled => _lock is not null;

    /// <summary>Takes the key's lock, or waits for its owner's value; see the type's remarks for the paths.</summary>
    /// <param name="key">The cache key.</param>
    /// <param name="newerThanTicks">
    /// Only a value created after this counts as the owner's (a refresh passes its current value's creation time: finding
    /// that same value in L2 is no answer); <see cref="long.MinValue"/> for a miss.
    /// </param>
    public async ValueTask<LockOutcome<T>> AcquireOrAwaitAsync<T>(string key, long newerThanTicks = long.MinValue)
    {
        if (!_l2!.IsAvailable)
        {
            Count(LockPath.Unavailable);
            return default;
        }

        string lockKey = _settings.Keys.Lock(key);
        try
        {
            IAsyncDisposable? lease = await TryAcquireBoundedAsync(lockKey).ConfigureAwait(false);
            Recovered();
            return await AfterAttemptAsync<T>(key, lockKey, lease, newerThanTicks).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Liveness over strictness: without the lock, load as a single node would.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Unavailable(key, ex);
            return default;
        }
    }

    /// <summary>
    /// Tries the locks of many keys in one round trip, without waiting: per key, in order, a lease (or the value, if L2
    /// already holds it), <see cref="LockOutcome{T}.Held"/> where another node holds the lock, or neither (unavailable).
    /// A batch loads what it holds, releases it, and only then waits for the other owners (<see cref="AwaitOwnerAsync"/>):
    /// it never holds one lock while waiting for another, so two batches on two nodes cannot wait for each other.
    /// </summary>
    public async ValueTask<LockOutcome<T>[]> TryAcquireManyAsync<T>(IReadOnlyList<string> keys)
    {
        var outcomes = new LockOutcome<T>[keys.Count];
        if (!_l2!.IsAvailable)
        {
            Count(LockPath.Unavailable, keys.Count);
            return outcomes;
        }

        var lockKeys = new string[keys.Count];
        for (int i = 0; i < lockKeys.Length; i++)
        {
            lockKeys[i] = _settings.Keys.Lock(keys[i]);
        }

        IAsyncDisposable?[] leases;
        try
        {
            using var deadline = new CancellationTokenSource(_settings.L2Timeout, _settings.Time);
            leases = await _lock!.TryAcquireManyAsync(lockKeys, deadline.Token).ConfigureAwait(false);
            Recovered();
        }
#pragma warning disable CA1031 // Liveness over strictness: without the lock, load as a single node would.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Unavailable("(batch)", ex);
            return outcomes;
        }

        for (int i = 0; i < outcomes.Length; i++)
        {
            IAsyncDisposable? lease = i < leases.Length ? leases[i] : null;
            outcomes[i] = lease is null ? new LockOutcome<T>(null, null) { Held = true } : await AfterAttemptGuardedAsync<T>(keys[i], lockKeys[i], lease).ConfigureAwait(false);
        }

        return outcomes;
    }

    /// <summary>Waits for another node's load of <paramref name="key"/>: its value from L2, the lock taken over, or neither (load without it).</summary>
    public ValueTask<LockOutcome<T>> AwaitOwnerAsync<T>(string key) => AfterAttemptGuardedAsync<T>(key, _settings.Keys.Lock(key), lease: null);

    /// <summary>Releases a held lock once the load is stored; a failure is logged (the implementation retries or the lease runs out).</summary>
    public async ValueTask ReleaseAsync(IAsyncDisposable lease, string key)
    {
        try
        {
            await lease.DisposeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // The lease expires on its own; a failed release must not fail the load.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Unavailable(key, ex);
        }
    }

    private async ValueTask<LockOutcome<T>> AfterAttemptGuardedAsync<T>(string key, string lockKey, IAsyncDisposable? lease)
    {
        try
        {
            return await AfterAttemptAsync<T>(key, lockKey, lease, long.MinValue).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Liveness over strictness: without the lock, load as a single node would.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Unavailable(key, ex);
            return default;
        }
    }

    private async ValueTask<LockOutcome<T>> AfterAttemptAsync<T>(string key, string lockKey, IAsyncDisposable? lease, long newerThanTicks)
    {
        bool waited = false;
        long deadline = _settings.Time.GetTimestamp();
        while (true)
        {
            // Owner or not, L2 may hold the value now: another node may have stored it just before this attempt.
            CacheItem<T>? stored = await ReadFreshAsync<T>(key, newerThanTicks).ConfigureAwait(false);
            if (stored is not null)
            {
                if (lease is not null)
                {
                    await ReleaseAsync(lease, key).ConfigureAwait(false);
                }

                Count(LockPath.Awaited);
                return new LockOutcome<T>(null, stored);
            }

            if (lease is not null)
            {
                Count(waited ? LockPath.TakenOver : LockPath.Acquired);
                return new LockOutcome<T>(lease, null);
            }

            // Held by a live owner: wait for its release (or its lease to run out), bounded by the lock timeout.
            TimeSpan left = _settings.LoadLockTimeout - _settings.Time.GetElapsedTime(deadline);
            if (left <= TimeSpan.Zero || !_l2!.IsAvailable)
            {
                Count(left <= TimeSpan.Zero ? LockPath.TimedOut : LockPath.Unavailable);
                string logKey = _settings.LogKey(key);
                string reason = left <= TimeSpan.Zero ? "waited DistributedLoadLockTimeout for the owner" : "L2 became unavailable";
                Log.LoadLockWaitEnded(_logger, _settings.Name, logKey, reason);
                return default;
            }

            await _lock!.WaitForReleaseAsync(lockKey, left, CancellationToken.None).ConfigureAwait(false);
            waited = true;
            if (await ReadFreshAsync<T>(key, newerThanTicks).ConfigureAwait(false) is { } fromOwner)
            {
                Count(LockPath.Awaited);
                return new LockOutcome<T>(null, fromOwner);
            }

            lease = await TryAcquireBoundedAsync(lockKey).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One lock attempt, bounded like any L2 call (<see cref="CoalescingCacheOptions.DistributedCacheTimeout"/>): a server
    /// that does not answer in time makes the lock unavailable (load without it), not a wait as long as the client's own timeout.
    /// </summary>
    private async ValueTask<IAsyncDisposable?> TryAcquireBoundedAsync(string lockKey)
    {
        using var deadline = new CancellationTokenSource(_settings.L2Timeout, _settings.Time);
        return await _lock!.TryAcquireAsync(lockKey, deadline.Token).ConfigureAwait(false);
    }

    private async ValueTask<CacheItem<T>?> ReadFreshAsync<T>(string key, long newerThanTicks)
    {
        CacheItem<T>? item = await _l2!.ReadAsync<T>(key).ConfigureAwait(false);
        return item is not null && item.ExpiresTicks > _settings.NowTicks && item.CreatedTicks > newerThanTicks && await _tags.SurvivesAsync(item).ConfigureAwait(false) ? item : null;
    }

    private void Unavailable(string key, Exception ex)
    {
        Count(LockPath.Unavailable);
        string logKey = _settings.LogKey(key);
        if (Interlocked.Exchange(ref _failing, 1) == 0)
        {
            Log.LoadLockFailed(_logger, _settings.Name, logKey, ex);
        }
        else
        {
            Log.LoadLockStillFailing(_logger, _settings.Name, logKey, ex);
        }
    }

    private void Recovered() => Volatile.Write(ref _failing, 0);

    private void Count(LockPath path, int count = 1) => _metrics.LoadLock(path switch
    {
        LockPath.Acquired => "acquired",
        LockPath.Awaited => "awaited",
        LockPath.TakenOver => "taken_over",
        LockPath.TimedOut => "timed_out",
        _ => "unavailable",
    }, count);

    private enum LockPath
    {
        Acquired,
        Awaited,
        TakenOver,
        TimedOut,
        Unavailable,
    }
}

/// <summary>What the lock step produced: a held lease (load, then release), the owner's value from L2, or neither (load without the lock).</summary>
internal readonly record struct LockOutcome<T>(IAsyncDisposable? Lease, CacheItem<T>? Found)
{
    /// <summary>Gets whether another node holds the lock (a batch's first attempt only: it waits for the owner later).</summary>
    public bool Held { get; init; }
}
