using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Caching.Distributed;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Internal;

/// <summary>
/// The distributed tier and its failure policy, in one room: every L2 call goes through here, bounded by
/// <see cref="CoalescingCacheOptions.DistributedCacheTimeout"/> on the injected clock, behind the circuit breaker and the
/// client's own health report, with values wrapped in the versioned <see cref="Envelope"/>. A failure, a timeout or an
/// unusable payload is counted, logged and becomes a miss (reads) or a queued replay (writes, removals): nothing here
/// throws to a caller except the caller's own cancellation. This file: reads, writes, removals and envelopes; batched reads
/// are in <c>.Batch.cs</c>, how one call is made in <c>.Calls.cs</c>, the breaker and health in <c>.Availability.cs</c>,
/// the replay queue in <c>.Replay.cs</c> and tag stamps in <c>.Stamps.cs</c>.
/// </summary>
/// <remarks>
/// Mutations of one key must run inside that key's <see cref="Sequencer"/> turn (the caller holds it; stamps take their
/// own), so that they reach L2 in the order this node began them. A buffer handed to the L2 client goes back to the pool
/// only once the client's call has completed, even when the caller stopped waiting for it.
/// </remarks>
internal sealed partial class L2Gateway
{
    private const string OperationRead = "read";
    private const string OperationWrite = "write";
    private const string OperationRemove = "remove";

    private readonly CacheSettings _settings;
    private readonly IDistributedCache _l2;
    private readonly IBufferDistributedCache? _buffers;
    private readonly IBatchDistributedCache? _batch;
    private readonly SerializerRegistry _serializers;
    private readonly CacheMetrics _metrics;
    private readonly ILogger _logger;
    private readonly BackgroundWork _background;
    private readonly LifetimeHorizon _horizon;
    private readonly ReadDeadlines _readDeadlines;
    private int _batchedReads;

    public L2Gateway(CacheSettings settings, IDistributedCache l2, IBatchDistributedCache? batch, IDistributedCacheHealth? health, SerializerRegistry serializers, CacheMetrics metrics, ILogger logger, BackgroundWork background, LifetimeHorizon horizon, bool otherNodesAnnounce)
    {
        _horizon = horizon;
        _recent = otherNodesAnnounce ? new(StringComparer.Ordinal) : null;
        _settings = settings;
        _l2 = l2;
        _buffers = l2 as IBufferDistributedCache;
        _batch = batch ?? l2 as IBatchDistributedCache;
        _serializers = serializers;
        _metrics = metrics;
        _logger = logger;
        _background = background;
        _readDeadlines = new ReadDeadlines(settings.Time, settings.L2Timeout, ex => Log.L2AbandonedCallFailed(_logger, _settings.Name, ex));
        _breaker = new CircuitBreaker(settings.BreakerThreshold, settings.BreakerWindow, settings.BreakerDuration, settings.Time);
        _health = health ?? l2 as IDistributedCacheHealth;
        if (_health is not null)
        {
            _health.AvailabilityChanged += OnAvailabilityChanged;
        }
    }

    /// <summary>Orders this node's mutations of each L2 key.</summary>
    public KeyedSequencer Sequencer { get; } = new();

    /// <summary>Gets how many batched reads were made: a test hook.</summary>
    public int BatchedReads => Volatile.Read(ref _batchedReads);

    /// <summary>Reads an entry; a logically expired one is returned too (fail-safe may use it). A miss, a failure or an unusable payload is <see langword="null"/>.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // every L2 hit: its state machine is reused, not allocated
    public async ValueTask<CacheItem<T>?> ReadAsync<T>(string key)
    {
        // One GetAsync, not IBufferDistributedCache.TryGetAsync: Microsoft's RedisCache answers the former with one
        // command and the latter with two (HMGET of the metadata, then HGET of the data).
        string l2Key = _settings.Keys.Entry(key);
        ValueTask idle = Sequencer.WhenIdleAsync(l2Key);
        if (!idle.IsCompletedSuccessfully)
        {
            await idle.ConfigureAwait(false); // this node is writing or removing the key: read what it leaves
        }

        if (HasPending(l2Key))
        {
            return null; // this node's own newer write or removal of the key has not reached L2 yet: L2's copy is older
        }

        // Asked only now that the call goes out: a breaker's probe granted to a read that does not happen would be lost.
        if (!Allowed())
        {
            return null;
        }

        // The hot path of an L2 hit allocates no deadline: a read that completes at once costs nothing, and one that does
        // not is watched by the reads' one shared timer (a pooled watch, no timer, token source or wrapper per read).
        // Nobody cancels a read (it has no caller token): one that times out is left to the client's own timeout, and a
        // failure it ends with later is logged there.
        using Activity? activity = CacheTelemetry.Start(CacheTelemetry.L2ReadActivity, _settings.Name, key, _settings.KeysInTelemetry);
        try
        {
            Task<byte[]?> call = _l2.GetAsync(l2Key, CancellationToken.None);
            byte[]? bytes;
            if (call.IsCompleted)
            {
                bytes = await call.ConfigureAwait(false);
            }
            else
            {
                ReadAnswer answer = await _readDeadlines.WatchAsync(call).ConfigureAwait(false);
                if (answer.IsTimedOut)
                {
                    Failed(OperationRead, key, null, activity);
                    return null;
                }

                bytes = answer.Bytes;
            }

            Succeeded();
            return bytes is null ? null : OlderThanOwnChange(key, Decode<T>(key, bytes));
        }
        catch (Exception ex)
        {
            Failed(OperationRead, key, ex, activity);
            return null;
        }
    }

    /// <summary>Reads only the creation time of an entry's envelope (<see langword="null"/>: none, unusable, or L2 could not say).</summary>
    public async ValueTask<long?> ReadCreatedTicksAsync(string key)
    {
        if (!Allowed())
        {
            return null;
        }

        using var deadline = new L2Deadline(_settings.L2Timeout, _settings.Time, CancellationToken.None);
        try
        {
            byte[]? bytes = await BoundAsync(_l2.GetAsync(_settings.Keys.Entry(key), deadline.Token), deadline.Token).ConfigureAwait(false);
            Succeeded();
            return bytes is not null && Envelope.TryRead(bytes, out EnvelopeHeader header, out _, out _) == EnvelopeStatus.Ok && !header.Removed ? header.CreatedTicks : null;
        }
#pragma warning disable CA1031 // L2 could not say: nothing to repair now.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Failed(OperationRead, key, deadline.TimedOut ? null : ex, null);
            return null;
        }
    }

    /// <summary>
    /// Writes an entry (the caller holds the key's sequencer turn). A <paramref name="replayable"/> write (a
    /// <c>SetAsync</c>) that L2 does not take is queued for replay; a loaded value is not (replaying it later could put an
    /// old read back over a newer write; the next load after L2 recovers stores a fresh one). Returns
    /// <see langword="false"/> when a replayable write could neither be written nor queued (the queue is full), so no node
    /// should keep the value.
    /// </summary>
    public async ValueTask<bool> WriteAsync<T>(string key, CacheItem<T> item, TimeSpan physicalLifetime, bool replayable, CancellationToken cancellationToken)
    {
        string l2Key = _settings.Keys.Entry(key);
        var buffer = new PooledBufferWriter();
        Task? call = null;
        try
        {
            try
            {
                bool notFound = item.Value is null;
                var header = new EnvelopeHeader(item.CreatedTicks, item.ExpiresTicks, item.LoadDurationTicks, TypeTag<T>.Value, notFound);
                Envelope.Write(buffer, header, item.Value, notFound ? null : _serializers.Get<T>(), item.Tags);
            }
#pragma warning disable CA1031 // The value cannot cross L2 (e.g. a cycle JSON refuses): it is served and kept in L1 only.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _metrics.L2Error(OperationWrite, "serialization");
                string logKey = _settings.LogKey(key);
                Log.L2WriteFailed(_logger, _settings.Name, logKey, ex);
                return true;
            }

            var pending = new PendingWrite(PendingKind.Entry, buffer.ToArray(), _settings.Time.GetUtcNow() + physicalLifetime, item.CreatedTicks);
            if (!Allowed())
            {
                return !replayable || Defer(l2Key, key, pending);
            }

            using var deadline = new L2Deadline(_settings.L2Timeout, _settings.Time, cancellationToken);
            using Activity? activity = CacheTelemetry.Start(CacheTelemetry.L2WriteActivity, _settings.Name, key, _settings.KeysInTelemetry);
            try
            {
                var entryOptions = new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = physicalLifetime };
                call = _buffers is not null
                    ? _buffers.SetAsync(l2Key, new ReadOnlySequence<byte>(buffer.WrittenMemory), entryOptions, deadline.Token).AsTask()
                    : _l2.SetAsync(l2Key, pending.Value!, entryOptions, deadline.Token);
                await BoundAsync(call, deadline.Token).ConfigureAwait(false);
                Written(l2Key);
                return true;
            }
            catch (OperationCanceledException) when (deadline.CallerCancelled)
            {
                throw;
            }
            catch (Exception ex)
            {
                if (!deadline.TimedOut && IsKeyError(ex)
                    && await RepairAsync(l2Key, pending.Value!, new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = physicalLifetime }).ConfigureAwait(false))
                {
                    Written(l2Key); // the key held something the write could not replace (another kind of data): removed, then written
                    return true;
                }

                Failed(OperationWrite, key, deadline.TimedOut ? null : ex, activity);
                if (replayable)
                {
                    return Defer(l2Key, key, pending);
                }

                if (deadline.TimedOut)
                {
                    // A write that timed out may still reach L2 later (a paused server runs what it was sent when it
                    // resumes), over something newer: a removal mark queued behind it takes it away again.
                    Defer(l2Key, key, RemovalNow());
                }

                return true;
            }
        }
        finally
        {
            ReturnWhenDone(buffer, call);
        }
    }

    /// <summary>
    /// Removes an entry (the caller holds the key's sequencer turn) by writing a removal mark over it: readers see a miss,
    /// and a write created before the removal that some node replays later sees it is older, and is dropped. The mark lives
    /// as long as the longest lifetime written, so any such write has expired before it does. A failure queues it for replay.
    /// </summary>
    public async ValueTask RemoveAsync(string key, CancellationToken cancellationToken)
    {
        string l2Key = _settings.Keys.Entry(key);
        PendingWrite pending = RemovalNow();
        if (!Allowed())
        {
            Defer(l2Key, key, pending);
            return;
        }

        using var deadline = new L2Deadline(_settings.L2Timeout, _settings.Time, cancellationToken);
        using Activity? activity = CacheTelemetry.Start(CacheTelemetry.L2RemoveActivity, _settings.Name, key, _settings.KeysInTelemetry);
        try
        {
            await BoundAsync(WriteRemovalMarkAsync(l2Key, pending.CreatedTicks, deadline.Token), deadline.Token).ConfigureAwait(false);
            Written(l2Key);
        }
        catch (OperationCanceledException) when (deadline.CallerCancelled)
        {
            throw;
        }
        catch (Exception ex)
        {
            if (!deadline.TimedOut && IsKeyError(ex) && await RepairAsync(l2Key, RemovalMark(pending.CreatedTicks, out DistributedCacheEntryOptions markOptions), markOptions).ConfigureAwait(false))
            {
                Written(l2Key); // the key held something the mark could not replace (another kind of data): removed, then marked
                return;
            }

            Failed(OperationRemove, key, deadline.TimedOut ? null : ex, activity);
            Defer(l2Key, key, pending);
        }
    }

    private Task WriteRemovalMarkAsync(string l2Key, long removedTicks, CancellationToken cancellationToken)
    {
        byte[] mark = RemovalMark(removedTicks, out DistributedCacheEntryOptions options);
        return _l2.SetAsync(l2Key, mark, options, cancellationToken);
    }

    /// <summary>A removal mark made at <paramref name="removedTicks"/>, kept as long as the longest lifetime written.</summary>
    private byte[] RemovalMark(long removedTicks, out DistributedCacheEntryOptions options)
    {
        TimeSpan lifetime = _horizon.Lifetime;
        byte[] mark = new byte[Envelope.HeaderSize];
        using (var writer = new PooledBufferWriter())
        {
            Envelope.Write<byte>(writer, EnvelopeHeader.RemovalMark(removedTicks, removedTicks + lifetime.Ticks), 0, serializer: null);
            writer.WrittenSpan.CopyTo(mark);
        }

        options = new DistributedCacheEntryOptions { AbsoluteExpirationRelativeToNow = lifetime };
        return mark;
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

        if (header.Removed)
        {
            return null; // removed: a miss
        }

        if (!Envelope.IsPlausible(header, _settings.NowTicks))
        {
            Reject(key, "an expiry no lifetime this cache accepts could produce", null);
            return null;
        }

        if (header.TypeTag != TypeTag<T>.Value)
        {
            Reject(key, $"stored as another type than '{typeof(T)}'", null);
            return null;
        }

        T value = default!;
        if (!header.NotFound)
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

        return new CacheItem<T>(value, header.CreatedTicks, header.ExpiresTicks, tags, header.LoadDurationTicks);
    }

    private void Reject(string key, string reason, Exception? exception)
    {
        _metrics.L2Error(OperationRead, "invalid_payload");
        string logKey = _settings.LogKey(key);
        Log.L2PayloadRejected(_logger, _settings.Name, logKey, reason, exception);
    }
}
