using System.Globalization;
using CacheGuard.Redis.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace CacheGuard.Redis;

/// <summary>
/// A per-key lock in Redis, so that on an L2 miss one node in the fleet runs the loader while the others wait for its
/// result: <c>SET key token NX PX lease</c>, renewed while its owner loads, released only by its owner
/// (compare-and-delete script, then a notification on pub/sub). Registered by <c>WithRedis</c>; used when
/// <c>CoalescingCacheOptions.DistributedLoadLock</c> is on (<c>.WithRedisLoadLock()</c>).
/// </summary>
/// <remarks>
/// <para>The lock for the key <c>k</c> the cache passes is the Redis key <c>InstanceName + k</c>: the cache derives
/// <c>k</c> in a key space of its own (<c>__cacheguard:lock:...</c>) that no cache entry reaches. Every
/// command goes through the shared <see cref="IConnectionMultiplexer"/>; while it is disconnected, acquiring and waiting
/// throw <see cref="RedisConnectionException"/> at once (the cache then loads without the lock).</para>
/// <para>Waiters wake on the release notification (channel <c>InstanceName + "__cacheguard:lock-released"</c>) or when
/// the lock key is gone: one pipelined <c>EXISTS</c> per node every <see cref="RedisLoadLockOptions.PollInterval"/>
/// covers every key this node waits for, so an owner that died is noticed once its lease expires, and waiters resume
/// as soon as a paused server answers again.</para>
/// <para>A release that fails (timeout, disconnect) is retried when the connection is restored and every
/// <see cref="RedisLoadLockOptions.PollInterval"/> until it succeeds or the lease has run out anyway.</para>
/// </remarks>
public sealed partial class RedisDistributedLoadLock : IDistributedLoadLock, IAsyncDisposable, IDisposable
{
    private readonly MultiplexerSource _source;
    private readonly string _prefix;
    private readonly RedisChannel _releaseChannel;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lease;
    private readonly TimeSpan _renewEvery;
    private readonly TimeSpan _pollInterval;
    private readonly CancellationTokenSource _stopping = new();

    // Guards _waiters, _watcher, _notifications, _subscription and _multiplexer.
    private readonly Lock _waitersLock = new();
    private readonly Dictionary<string, Waiter> _waiters = new(StringComparer.Ordinal);
    private Task? _watcher;
    private Task? _notifications;
    private ChannelMessageQueue? _subscription;
    private IConnectionMultiplexer? _multiplexer;
    private int _waiting;
    private int _disposed;

    /// <summary>Initializes a new instance of the <see cref="RedisDistributedLoadLock"/> class.</summary>
    /// <param name="multiplexer">The connection; not disposed by the lock.</param>
    /// <param name="instanceName">The raw prefix of the lock keys and the release channel: the L2's <c>InstanceName</c>, or <see langword="null"/>.</param>
    /// <param name="options">The lease and polling settings, or <see langword="null"/> for the defaults.</param>
    /// <param name="logger">The logger, or <see langword="null"/> for none.</param>
    /// <param name="timeProvider">The clock for lease renewal and waiting, or <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range; the message names it.</exception>
    public RedisDistributedLoadLock(IConnectionMultiplexer multiplexer, string? instanceName = null, RedisLoadLockOptions? options = null, ILogger<RedisDistributedLoadLock>? logger = null, TimeProvider? timeProvider = null)
        : this(new MultiplexerSource(multiplexer ?? throw new ArgumentNullException(nameof(multiplexer)), "the given multiplexer"), instanceName, options, logger, timeProvider)
    {
    }

    internal RedisDistributedLoadLock(MultiplexerSource source, string? instanceName, RedisLoadLockOptions? options, ILogger? logger, TimeProvider? timeProvider)
    {
        options ??= new RedisLoadLockOptions();
        options.Validate();
        _source = source;
        _prefix = instanceName ?? string.Empty;
        ReleaseChannel = _prefix + "__cacheguard:lock-released";
        _releaseChannel = RedisChannel.Literal(ReleaseChannel);
        _lease = options.LeaseDuration;
        _renewEvery = options.LeaseDuration / 3;
        _pollInterval = options.PollInterval;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Gets the channel on which owners announce releases.</summary>
    /// <value><c>InstanceName + "__cacheguard:lock-released"</c>; each message is the released lock key.</value>
    public string ReleaseChannel { get; }

    /// <summary>Gets or sets what to call when Redis has just answered a waiter (the tier's health source clears a suspicion).</summary>
    internal Action? ServerAnswered { get; set; }

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
    /// <param name="key">The lock's key, as the cache passes it.</param>
    /// <param name="cancellationToken">Abandons the attempt.</param>
    /// <returns>The held lock, which renews itself every third of the lease until disposed; or <see langword="null"/> if another owner holds it.</returns>
    /// <exception cref="RedisConnectionException">Redis is not connected.</exception>
    /// <exception cref="RedisTimeoutException">Redis did not answer in time.</exception>
    public async ValueTask<IAsyncDisposable?> TryAcquireAsync(string key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        IDatabase database = await ConnectedDatabaseAsync(cancellationToken).ConfigureAwait(false);
        string lockKey = LockKey(key);
        string token = NewToken();
        Task<bool> set = database.StringSetAsync(lockKey, token, _lease, When.NotExists);
        try
        {
            bool taken = await set.WaitObservedAsync(cancellationToken).ConfigureAwait(false);
            ServerAnswered?.Invoke(); // an answered attempt: the taker reads L2 next, and must not find it marked unavailable
            return taken ? new Lease(this, lockKey, token) : null;
        }
        catch (Exception ex) when (ex is OperationCanceledException or RedisTimeoutException)
        {
            ReleaseIfTakenLater(set, lockKey, token);
            throw;
        }
    }

    /// <summary>
    /// An attempt the caller stopped waiting for (its token, or the client's timeout) may still take the lock when the
    /// server runs it (a paused server runs it on resuming): nobody would own that lock, and every node would wait for it
    /// until the lease ran out. If it is taken, or may have been (a timeout), it is released by its token at once; the
    /// release follows the attempt on the same connection, and removes nothing another owner holds.
    /// </summary>
    private void ReleaseIfTakenLater(Task<bool> set, string lockKey, string token) => _ = ReleaseWhenTakenAsync(set, lockKey, token);

    private async Task ReleaseWhenTakenAsync(Task<bool> set, string lockKey, string token)
    {
        try
        {
            bool mayHold;
            try
            {
                mayHold = await set.ConfigureAwait(false);
            }
            catch (RedisTimeoutException)
            {
                mayHold = true;
            }

            if (mayHold)
            {
                await new Lease(this, lockKey, token).DisposeAsync().ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // Nobody waits for this: a failed attempt took nothing, a failed release is logged (the lease runs out).
        catch (Exception ex)
#pragma warning restore CA1031
        {
            if (set.IsCompletedSuccessfully || set.Exception?.InnerException is RedisTimeoutException)
            {
                Log.LoadLockReleaseFailed(_logger, lockKey, ex); // the attempt may hold it: the release failed
            }
        }
    }

    /// <summary>Tries to take the locks for many keys with pipelined <c>SET NX PX</c> commands: one round trip (one per node on a cluster).</summary>
    /// <param name="keys">The lock keys, distinct.</param>
    /// <param name="cancellationToken">Abandons the attempt.</param>
    /// <returns>For each key, in order, the held lock, or <see langword="null"/> where another owner holds it.</returns>
    /// <exception cref="RedisConnectionException">Redis is not connected; no lock is held afterwards.</exception>
    public async ValueTask<IAsyncDisposable?[]> TryAcquireManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var leases = new IAsyncDisposable?[keys.Count];
        if (keys.Count == 0)
        {
            return leases;
        }

        IDatabase database = await ConnectedDatabaseAsync(cancellationToken).ConfigureAwait(false);
        IBatch batch = database.CreateBatch();
        var pending = new Task<bool>[keys.Count];
        var lockKeys = new string[keys.Count];
        var tokens = new string[keys.Count];
        for (int i = 0; i < pending.Length; i++)
        {
            lockKeys[i] = LockKey(keys[i] ?? throw new ArgumentException($"keys[{i}] is null.", nameof(keys)));
            tokens[i] = NewToken();
            pending[i] = batch.StringSetAsync(lockKeys[i], tokens[i], _lease, When.NotExists);
        }

        batch.Execute();
        try
        {
            await Task.WhenAll(pending).WaitObservedAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // Some may have been taken, or be taken when the server answers: release those (each release retries on its
            // own), then report the failure.
            for (int i = 0; i < pending.Length; i++)
            {
                if (pending[i].IsCompletedSuccessfully && pending[i].Result)
                {
                    await new Lease(this, lockKeys[i], tokens[i]).DisposeAsync().ConfigureAwait(false);
                }
                else
                {
                    ReleaseIfTakenLater(pending[i], lockKeys[i], tokens[i]);
                }
            }

            throw;
        }

        ServerAnswered?.Invoke(); // answered attempts: the batch reads L2 next
        for (int i = 0; i < pending.Length; i++)
        {
            leases[i] = pending[i].Result ? new Lease(this, lockKeys[i], tokens[i]) : null;
        }

        return leases;
    }

    /// <summary>Waits until the lock for <paramref name="key"/> is gone (released, or expired) or <paramref name="timeout"/> passes.</summary>
    /// <param name="key">The lock's key, as passed to <see cref="TryAcquireAsync"/>.</param>
    /// <param name="timeout">The longest wait.</param>
    /// <param name="cancellationToken">Abandons the wait.</param>
    /// <returns><see langword="true"/> once the lock is gone; <see langword="false"/> on timeout.</returns>
    /// <exception cref="RedisConnectionException">Redis is, or became, unreachable while waiting.</exception>
    /// <exception cref="RedisTimeoutException">A check of the lock key timed out.</exception>
    public async ValueTask<bool> WaitForReleaseAsync(string key, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        IDatabase database = await ConnectedDatabaseAsync(cancellationToken).ConfigureAwait(false);
        string lockKey = LockKey(key);
        Interlocked.Increment(ref _waiting);
        Waiter waiter = Register(lockKey); // before the first check, so a release in between is not missed
        try
        {
            if (!await database.KeyExistsAsync(lockKey).WaitObservedAsync(cancellationToken).ConfigureAwait(false))
            {
                ServerAnswered?.Invoke();
                return true;
            }

            try
            {
                return await waiter.Released.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException) when (!waiter.Released.Task.IsCompleted)
            {
                return false;
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
        if (!BeginDispose(out ChannelMessageQueue? subscription, out Task? notifications))
        {
            return;
        }

        if (notifications is not null)
        {
            await notifications.ConfigureAwait(false);
        }

        subscription ??= TakeSubscription();
        if (subscription is not null)
        {
            await UnsubscribeQuietlyAsync(subscription).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (BeginDispose(out ChannelMessageQueue? subscription, out _) && subscription is not null)
        {
            _ = UnsubscribeQuietlyAsync(subscription);
        }
    }

    internal string LockKey(string key) => _prefix + key;

    private static string NewToken() => Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture);

    private bool BeginDispose(out ChannelMessageQueue? subscription, out Task? notifications)
    {
        subscription = null;
        notifications = null;
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return false;
        }

        _stopping.Cancel();
        StopRetrying(disposing: true);
        lock (_waitersLock)
        {
            if (_multiplexer is { } multiplexer)
            {
                multiplexer.ConnectionRestored -= OnConnectionRestored;
            }

            subscription = _subscription;
            _subscription = null;
            notifications = _notifications;
        }

        return true;
    }

    private ChannelMessageQueue? TakeSubscription()
    {
        lock (_waitersLock)
        {
            ChannelMessageQueue? subscription = _subscription;
            _subscription = null;
            return subscription;
        }
    }

    /// <summary>The database, once the multiplexer exists and is connected; otherwise throws at once.</summary>
    private async ValueTask<IDatabase> ConnectedDatabaseAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        IConnectionMultiplexer multiplexer = _source.Current ?? await _source.GetAsync().WaitObservedAsync(cancellationToken).ConfigureAwait(false);
        RedisCacheBatchReader.ThrowIfDisconnected(multiplexer, _source.Description);
        StartNotifications(multiplexer); // a node that cannot take a lock waits next: have the release channel ready
        return multiplexer.GetDatabase();
    }

    private async Task UnsubscribeQuietlyAsync(ChannelMessageQueue subscription)
    {
        try
        {
            await subscription.UnsubscribeAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A fire-and-forget unsubscribe from Dispose: log whatever it threw, nobody else can observe it.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.UnsubscribeFailed(_logger, ReleaseChannel, ex);
        }
    }
}
