using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CacheGuard.Redis;

/// <summary>
/// A per-key lock in Redis, so that on an L2 miss one node in the fleet runs the loader while the others wait for its
/// result: <c>SET key token NX PX lease</c>, renewed while held, released only by its owner (compare-and-delete in a
/// script that also announces the release on pub/sub). Registered by <c>WithRedis</c>; used when
/// <c>CoalescingCacheOptions.DistributedLoadLock</c> is on.
/// </summary>
/// <remarks>
/// The lock for the L2 key <c>k</c> is the Redis key <c>InstanceName + k + ":__lock"</c>. Waiters are woken by the
/// release notification (channel <c>InstanceName + "__cacheguard:lock-released"</c>) and also poll every
/// <see cref="RedisLoadLockOptions.PollInterval"/>, so an owner that died is noticed once its lease expires. Transport
/// failures throw from <see cref="TryAcquireAsync"/> and <see cref="WaitForReleaseAsync"/> (the cache then loads
/// without the lock); releasing never throws.
/// </remarks>
public sealed class RedisDistributedLoadLock : IDistributedLoadLock, IAsyncDisposable, IDisposable
{
    internal const string LockSuffix = ":__lock";

    private const string ReleaseScript = "if redis.call('get',KEYS[1])==ARGV[1] then redis.call('del',KEYS[1]); redis.call('publish',ARGV[2],KEYS[1]); return 1 else return 0 end";
    private const string RenewScript = "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('pexpire',KEYS[1],ARGV[2]) else return 0 end";
    private static readonly string ReleaseSha = Sha1(ReleaseScript);
    private static readonly string RenewSha = Sha1(RenewScript);

    private readonly RedisConnection _connection;
    private readonly string _prefix;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly long _leaseMilliseconds;
    private readonly TimeSpan _renewEvery;
    private readonly TimeSpan _pollInterval;
    private readonly CancellationTokenSource _stopping = new();

    // Waiters by lock key; the release notification completes and removes an entry. Guarded by _waitersLock.
    private readonly Lock _waitersLock = new();
    private readonly Dictionary<string, Waiter> _waiters = new(StringComparer.Ordinal);
    private Task? _notifications; // guarded by _waitersLock
    private RedisSubscription? _subscription; // guarded by _waitersLock
    private int _waiting;
    private int _disposed;

    /// <summary>Initializes a new instance of the <see cref="RedisDistributedLoadLock"/> class.</summary>
    /// <param name="connection">The connection; not disposed by the lock.</param>
    /// <param name="instanceName">The raw prefix of the lock keys and the release channel: the L2's <c>InstanceName</c>, or <see langword="null"/>.</param>
    /// <param name="options">The lease and polling settings, or <see langword="null"/> for the defaults.</param>
    /// <param name="logger">The logger, or <see langword="null"/> for none.</param>
    /// <param name="timeProvider">The clock for lease renewal and waiting, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range; the message names it.</exception>
    public RedisDistributedLoadLock(RedisConnection connection, string? instanceName = null, RedisLoadLockOptions? options = null, ILogger<RedisDistributedLoadLock>? logger = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        options ??= new RedisLoadLockOptions();
        options.Validate();
        _connection = connection;
        _prefix = instanceName ?? string.Empty;
        ReleaseChannel = _prefix + "__cacheguard:lock-released";
        _leaseMilliseconds = (long)options.LeaseDuration.TotalMilliseconds;
        _renewEvery = options.LeaseDuration / 3;
        _pollInterval = options.PollInterval;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Gets the channel on which owners announce releases.</summary>
    /// <value><c>InstanceName + "__cacheguard:lock-released"</c>; each message is the released lock key.</value>
    public string ReleaseChannel { get; }

    /// <summary>Gets how many calls are inside <see cref="WaitForReleaseAsync"/>: a test hook.</summary>
    internal int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Gets the release-notification subscription task, once started: a test hook.</summary>
    internal Task? Notifications
    {
        get
        {
            lock (_waitersLock)
            {
                return _notifications;
            }
        }
    }

    /// <summary>Tries to take the lock for <paramref name="key"/> with one <c>SET NX PX</c>.</summary>
    /// <param name="key">The L2 key being loaded.</param>
    /// <param name="cancellationToken">Abandons the attempt.</param>
    /// <returns>The held lock, which renews itself every third of the lease until disposed; or <see langword="null"/> if another owner holds it.</returns>
    /// <exception cref="RedisConnectionException">Redis is unreachable.</exception>
    /// <exception cref="RedisTimeoutException">Redis did not answer in time.</exception>
    public async ValueTask<IAsyncDisposable?> TryAcquireAsync(string key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        StartNotifications(); // a node that cannot take a lock waits next: have the release channel ready
        string lockKey = LockKey(key);
        string token = Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture);
        RedisResult reply = await _connection.ExecuteAsync(new RedisCommand("SET", lockKey, token, "NX", "PX", _leaseMilliseconds), cancellationToken).ConfigureAwait(false);
        return reply.IsNull ? null : new Lease(this, lockKey, token);
    }

    /// <summary>Waits until the lock for <paramref name="key"/> is gone (released, or expired) or <paramref name="timeout"/> passes.</summary>
    /// <param name="key">The L2 key being loaded elsewhere.</param>
    /// <param name="timeout">The longest wait.</param>
    /// <param name="cancellationToken">Abandons the wait.</param>
    /// <returns><see langword="true"/> once the lock is gone; <see langword="false"/> on timeout.</returns>
    /// <exception cref="RedisConnectionException">Redis became unreachable while polling.</exception>
    public async ValueTask<bool> WaitForReleaseAsync(string key, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        string lockKey = LockKey(key);
        long started = _time.GetTimestamp();
        Interlocked.Increment(ref _waiting);
        StartNotifications();
        Waiter waiter = Register(lockKey); // before the first check, so a release in between is not missed
        try
        {
            var exists = new RedisCommand("EXISTS", lockKey);
            while (true)
            {
                if ((await _connection.ExecuteAsync(exists, cancellationToken).ConfigureAwait(false)).ToInt64() == 0)
                {
                    return true;
                }

                TimeSpan left = timeout - _time.GetElapsedTime(started);
                if (left <= TimeSpan.Zero)
                {
                    return false;
                }

                Task released = waiter.Released.Task;
                Task wait = released.WaitAsync(left < _pollInterval ? left : _pollInterval, _time, cancellationToken);
                await wait.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                if (released.IsCompleted)
                {
                    return true;
                }
            }
        }
        finally
        {
            Unregister(lockKey, waiter);
            Interlocked.Decrement(ref _waiting);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        Task? notifications;
        RedisSubscription? subscription;
        lock (_waitersLock)
        {
            notifications = _notifications;
            subscription = _subscription;
            _subscription = null;
        }

        if (notifications is not null)
        {
            await notifications.ConfigureAwait(false);
        }

        lock (_waitersLock)
        {
            subscription ??= _subscription;
            _subscription = null;
        }

        if (subscription is not null)
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
        lock (_waitersLock)
        {
            if (_subscription is { } subscription)
            {
                _subscription = null;
                _ = UnsubscribeQuietlyAsync(subscription);
            }
        }
    }

    internal string LockKey(string key) => _prefix + key + LockSuffix;

    private static string Sha1(string script)
    {
#pragma warning disable CA5350 // Redis names scripts by their SHA-1 (EVALSHA): an identifier, not a security measure.
        return Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(script)));
#pragma warning restore CA5350
    }

    private async Task UnsubscribeQuietlyAsync(RedisSubscription subscription)
    {
        try
        {
            await subscription.UnsubscribeAsync(CancellationToken.None).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A fire-and-forget unsubscribe from Dispose: log whatever it threw, nobody else can observe it.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.UnsubscribeFailed(_logger, ReleaseChannel, ex);
        }
    }

    /// <summary>Runs a script by its SHA-1, loading it with <c>EVAL</c> when the server does not know it yet.</summary>
    private async ValueTask<RedisResult> EvalAsync(string script, string sha, string key, RedisArgument first, RedisArgument second, CancellationToken cancellationToken)
    {
        try
        {
            return await _connection.ExecuteAsync(new RedisCommand("EVALSHA", sha, 1L, key, first, second), cancellationToken).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.ErrorPrefix == "NOSCRIPT")
        {
            return await _connection.ExecuteAsync(new RedisCommand("EVAL", script, 1L, key, first, second), cancellationToken).ConfigureAwait(false);
        }
    }

    private void StartNotifications()
    {
        lock (_waitersLock)
        {
            _notifications ??= SubscribeAsync();
        }
    }

    private async Task SubscribeAsync()
    {
        await Task.Yield();
        try
        {
            RedisSubscription subscription = await _connection.SubscribeAsync(ReleaseChannel, OnReleased, _stopping.Token).ConfigureAwait(false);
            bool keep;
            lock (_waitersLock)
            {
                keep = Volatile.Read(ref _disposed) == 0;
                if (keep)
                {
                    _subscription = subscription;
                }
            }

            if (!keep)
            {
                await subscription.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Disposed before the server confirmed.
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException or RedisServerException or ObjectDisposedException)
        {
            // Waiters poll; the next wait tries again.
            Log.LoadLockNotificationsUnavailable(_logger, ReleaseChannel, ex);
            lock (_waitersLock)
            {
                _notifications = null;
            }
        }
    }

    private void OnReleased(string channel, ReadOnlyMemory<byte> payload)
    {
        string lockKey = Encoding.UTF8.GetString(payload.Span);
        Waiter? waiter;
        lock (_waitersLock)
        {
            if (_waiters.Remove(lockKey, out waiter))
            {
                waiter.Detached = true;
            }
        }

        waiter?.Released.TrySetResult();
    }

    private Waiter Register(string lockKey)
    {
        lock (_waitersLock)
        {
            if (!_waiters.TryGetValue(lockKey, out Waiter? waiter))
            {
                waiter = new Waiter();
                _waiters.Add(lockKey, waiter);
            }

            waiter.Count++;
            return waiter;
        }
    }

    private void Unregister(string lockKey, Waiter waiter)
    {
        lock (_waitersLock)
        {
            if (--waiter.Count == 0 && !waiter.Detached)
            {
                _waiters.Remove(lockKey);
            }
        }
    }

    /// <summary>The callers on this node waiting for one lock key. Count and Detached are guarded by the owner's _waitersLock.</summary>
    private sealed class Waiter
    {
        public TaskCompletionSource Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Count { get; set; }

        public bool Detached { get; set; }
    }

    /// <summary>A held lock: renews itself until disposed, then releases if still its owner.</summary>
    private sealed class Lease : IAsyncDisposable
    {
        private readonly RedisDistributedLoadLock _owner;
        private readonly string _lockKey;
        private readonly string _token;
        private readonly ITimer _renewal;
        private int _renewing;
        private int _released;

        public Lease(RedisDistributedLoadLock owner, string lockKey, string token)
        {
            _owner = owner;
            _lockKey = lockKey;
            _token = token;
            _renewal = owner._time.CreateTimer(static state => ((Lease)state!).Renew(), this, owner._renewEvery, owner._renewEvery);
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0)
            {
                return;
            }

            await _renewal.DisposeAsync().ConfigureAwait(false);
            try
            {
                await _owner.EvalAsync(ReleaseScript, ReleaseSha, _lockKey, _token, _owner.ReleaseChannel, CancellationToken.None).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Releasing is the caller's finally: never fail it. The lease expires on its own.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.LoadLockReleaseFailed(_owner._logger, _lockKey, ex);
            }
        }

        private void Renew()
        {
            if (Volatile.Read(ref _released) == 0 && Interlocked.Exchange(ref _renewing, 1) == 0)
            {
                _ = RenewAsync();
            }
        }

        private async Task RenewAsync()
        {
            try
            {
                RedisResult reply = await _owner.EvalAsync(RenewScript, RenewSha, _lockKey, _token, _owner._leaseMilliseconds, CancellationToken.None).ConfigureAwait(false);
                if (reply.ToInt64() == 0 && Volatile.Read(ref _released) == 0)
                {
                    Log.LoadLockLost(_owner._logger, _lockKey);
                    await _renewal.DisposeAsync().ConfigureAwait(false); // not ours any more: stop renewing
                }
            }
#pragma warning disable CA1031 // A failed renewal is retried at the next tick; the loader must not notice.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.LoadLockRenewFailed(_owner._logger, _lockKey, ex);
            }
            finally
            {
                Volatile.Write(ref _renewing, 0);
            }
        }
    }
}
