using System.Buffers.Binary;
using System.Globalization;

namespace CacheGuard.Soak;

/// <summary>
/// Carries out the fault schedule: each track runs in order, each fault at its planned time, logged with timestamps
/// when it starts and ends, and recorded in the <see cref="HealthTimeline"/> with what it disturbs. A fault action
/// that itself fails (the injector's problem, not the cache's) is logged and counted as a harness error.
/// </summary>
internal sealed class FaultInjector(SoakSettings settings, RedisProcess redis, SimulatedDatabase db, HealthTimeline health, SoakLog log)
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(5);
    private readonly Random _random = new(Seeds.Derive(settings.Seed, 3));
    private int _harnessErrors;

    /// <summary>Fault actions that failed (the injector's own errors).</summary>
    public int HarnessErrors => Volatile.Read(ref _harnessErrors);

    /// <summary>Faults carried out, by kind.</summary>
    public Dictionary<FaultKind, int> Done { get; } = [];

    public Task RunAsync(IReadOnlyList<PlannedFault> plan, CancellationToken stop)
    {
        bool IsRedis(PlannedFault f) => f.Kind is not (FaultKind.DbErrorBurst or FaultKind.DbLatencySpike);
        return Task.WhenAll(
            RunTrackAsync(plan.Where(IsRedis).ToList(), stop),
            RunTrackAsync(plan.Where(f => !IsRedis(f)).ToList(), stop));
    }

    private async Task RunTrackAsync(List<PlannedFault> track, CancellationToken stop)
    {
        foreach (PlannedFault fault in track)
        {
            long at = Clock.Origin + Clock.Ticks(TimeSpan.FromSeconds(fault.At));
            TimeSpan wait = Clock.Span(Clock.Now, at);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, stop);
            }

            try
            {
                await ExecuteAsync(fault);
                lock (Done)
                {
                    Done[fault.Kind] = Done.GetValueOrDefault(fault.Kind) + 1;
                }
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or TimeoutException)
            {
                Interlocked.Increment(ref _harnessErrors);
                log.Write($"HARNESS fault {fault.Kind} failed: {ex}", console: true);
            }
        }
    }

    private async Task ExecuteAsync(PlannedFault fault)
    {
        TimeSpan duration = TimeSpan.FromSeconds(fault.Duration);
        switch (fault.Kind)
        {
            case FaultKind.RedisStop:
            {
                HealthTimeline.Window window = Begin(fault, "redis stopped", Disturbs.Backplane | Disturbs.Lock);
                await redis.StopAsync(kill: fault.Variant == 1);
                await Task.Delay(duration);
                await redis.RestartAsync();
                End(window, recovery: true, "redis restarted empty and answers PING");
                break;
            }

            case FaultKind.RedisPause:
            {
                HealthTimeline.Window window = Begin(fault, "redis paused", Disturbs.Backplane | Disturbs.Lock);
                await redis.PauseAsync();
                try
                {
                    await Task.Delay(duration);
                }
                finally
                {
                    await redis.ResumeAsync();
                }

                End(window, recovery: true, "redis resumed (SIGCONT)");
                break;
            }

            case FaultKind.RedisFlush:
            {
                // Instant: every lock held now is gone, so loads that overlap across this moment are excused.
                HealthTimeline.Window window = Begin(fault, "FLUSHALL", Disturbs.Lock);
                string reply = await RawRedis.ExecuteAsync(redis.Port, CommandTimeout, "FLUSHALL");
                End(window, recovery: false, $"FLUSHALL answered {reply}", settle: false);
                break;
            }

            case FaultKind.PubSubKill:
            {
                // Messages published until the nodes resubscribe are lost: the backplane is disturbed for the settle time.
                HealthTimeline.Window window = Begin(fault, "pub/sub connections killed", Disturbs.Backplane);
                string reply = await RawRedis.ExecuteAsync(redis.Port, CommandTimeout, "CLIENT", "KILL", "TYPE", "pubsub");
                End(window, recovery: false, $"CLIENT KILL TYPE pubsub killed {reply.TrimStart(':')} connections");
                break;
            }

            case FaultKind.CorruptPayloads:
            {
                HealthTimeline.Window window = Begin(fault, "corrupt payloads", Disturbs.None);
                var keys = new List<string>();
                for (int i = 0; i < fault.Variant; i++)
                {
                    string key = db.Rows[i % 3 == 0 ? _random.Next(0, 10) : _random.Next(0, 60)].Key; // hot keys: surely live
                    int variant = _random.Next(0, 4);
                    byte[] data = CorruptPayload(variant);
                    object[][] commands = variant == 3
                        ? SoakRedis.WrongTypeCommands(key, data, settings.L2Expiration)
                        : SoakRedis.WriteEntryCommands(key, data, settings.L2Expiration);
                    foreach (object[] command in commands)
                    {
                        await RawRedis.ExecuteAsync(redis.Port, CommandTimeout, command);
                    }

                    keys.Add($"{key}:{VariantName(variant)}");
                }

                End(window, recovery: false, $"wrote {keys.Count} corrupt entries: {string.Join(", ", keys)}", settle: false);
                break;
            }

            case FaultKind.DbErrorBurst:
            {
                HealthTimeline.Window window = Begin(fault, "database error burst", Disturbs.Database);
                db.ErrorRate = fault.Level;
                await Task.Delay(duration);
                db.ErrorRate = settings.DbErrorRate;
                End(window, recovery: false, "database errors back to normal", settle: false);
                break;
            }

            case FaultKind.DbLatencySpike:
            {
                HealthTimeline.Window window = Begin(fault, "database latency spike", Disturbs.Database);
                db.LatencySpike = TimeSpan.FromSeconds(fault.Level);
                await Task.Delay(duration);
                db.LatencySpike = TimeSpan.Zero;
                End(window, recovery: false, "database latency back to normal", settle: false);
                break;
            }

            default:
                throw new InvalidOperationException($"Unknown fault {fault.Kind}.");
        }
    }

    private HealthTimeline.Window Begin(PlannedFault fault, string what, Disturbs disturbs)
    {
        log.Write($"FAULT start: {fault.ToString().TrimStart()}", console: true);
        return health.Open(what, Clock.Now, disturbs);
    }

    private void End(HealthTimeline.Window window, bool recovery, string what, bool settle = true)
    {
        long now = Clock.Now;
        health.Close(window, now, recovery, settle);
        log.Write(string.Create(CultureInfo.InvariantCulture, $"FAULT end: {what} ({Clock.Milliseconds(window.Start, now):0} ms after it started)"), console: true);
    }

    private static string VariantName(int variant) => variant switch
    {
        0 => "random-bytes",
        1 => "truncated-envelope",
        2 => "unknown-envelope-version",
        _ => "wrong-redis-type",
    };

    /// <summary>
    /// Bytes that are not a valid CacheGuard entry: random bytes; an envelope (v1 layout, see the core's
    /// <c>Envelope</c>) whose payload length runs past its end; an envelope of a format version no reader knows; or,
    /// for the wrong-type variant, the value of a Redis string where a hash belongs.
    /// </summary>
    private byte[] CorruptPayload(int variant)
    {
        if (variant is 0 or 3)
        {
            byte[] noise = new byte[_random.Next(1, 80)];
            _random.NextBytes(noise);
            return noise;
        }

        byte[] envelope = new byte[48 + 16];
        envelope[0] = (byte)'C';
        envelope[1] = (byte)'G';
        envelope[2] = variant == 1 ? (byte)1 : (byte)99;
        BinaryPrimitives.WriteUInt16LittleEndian(envelope.AsSpan(4), 48);
        long now = DateTimeOffset.UtcNow.UtcTicks;
        BinaryPrimitives.WriteInt64LittleEndian(envelope.AsSpan(8), now);
        BinaryPrimitives.WriteInt64LittleEndian(envelope.AsSpan(16), now + TimeSpan.TicksPerHour);
        BinaryPrimitives.WriteUInt64LittleEndian(envelope.AsSpan(32), (ulong)_random.NextInt64());
        BinaryPrimitives.WriteInt32LittleEndian(envelope.AsSpan(40), 4096); // longer than what follows
        return envelope;
    }
}
