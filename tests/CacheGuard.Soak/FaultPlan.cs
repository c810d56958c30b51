using System.Globalization;

namespace CacheGuard.Soak;

/// <summary>The faults the soak injects.</summary>
internal enum FaultKind
{
    /// <summary>redis-server stopped (SIGTERM or SIGKILL), then started again on the same port, empty.</summary>
    RedisStop,

    /// <summary>redis-server frozen with SIGSTOP for longer than every client-side timeout, then SIGCONT.</summary>
    RedisPause,

    /// <summary>FLUSHALL: every entry, tag stamp and lock gone at once.</summary>
    RedisFlush,

    /// <summary>CLIENT KILL TYPE pubsub: every subscriber connection dropped, so backplane messages are lost.</summary>
    PubSubKill,

    /// <summary>Corrupt payloads written under live keys by a raw client.</summary>
    CorruptPayloads,

    /// <summary>The database fails a share of its queries for a while.</summary>
    DbErrorBurst,

    /// <summary>Every database query takes longer than <c>LoaderHardTimeout</c> for a while.</summary>
    DbLatencySpike,
}

/// <summary>One fault of the schedule: when it starts (seconds into the run), how long it lasts, and its parameters.</summary>
/// <param name="Kind">What is done.</param>
/// <param name="At">Seconds after the run's start.</param>
/// <param name="Duration">Seconds it lasts (0 for instant faults).</param>
/// <param name="Variant">Stop: 0 SIGTERM, 1 SIGKILL. Corrupt: how many keys.</param>
/// <param name="Level">Error burst: the error rate. Latency spike: the query latency in seconds.</param>
internal sealed record PlannedFault(FaultKind Kind, double At, double Duration, int Variant, double Level)
{
    public double End => At + Duration;

    public override string ToString() => Kind switch
    {
        FaultKind.RedisStop => Describe($"redis stopped ({(Variant == 0 ? "SIGTERM" : "SIGKILL")}) and restarted empty after {Duration:0.0} s"),
        FaultKind.RedisPause => Describe($"redis paused (SIGSTOP) for {Duration:0.0} s"),
        FaultKind.RedisFlush => Describe("FLUSHALL"),
        FaultKind.PubSubKill => Describe("CLIENT KILL TYPE pubsub"),
        FaultKind.CorruptPayloads => Describe($"corrupt payloads under {Variant} live keys"),
        FaultKind.DbErrorBurst => Describe($"database error burst ({Level:P0} of queries fail) for {Duration:0.0} s"),
        FaultKind.DbLatencySpike => Describe($"database latency spike ({Level * 1000:0} ms per query) for {Duration:0.0} s"),
        _ => Describe(Kind.ToString()),
    };

    private string Describe(string what) => string.Create(CultureInfo.InvariantCulture, $"{At,7:0.0}s  {what}");
}

/// <summary>
/// The fault schedule, drawn from the seed alone (so <c>--seed</c> replays it): two tracks that overlap freely, one
/// for Redis (stop, pause, flush, pub/sub kill, corrupt payloads) and one for the database (error bursts, latency
/// spikes). Each track deals its kinds from a shuffled deck, so every kind comes up before any repeats, and places
/// every fault between the warm-up and the convergence tail.
/// </summary>
internal static class FaultPlan
{
    public static IReadOnlyList<PlannedFault> Create(SoakSettings settings)
    {
        if (!settings.Faults)
        {
            return [];
        }

        var random = new Random(Seeds.Derive(settings.Seed, 2));
        double start = settings.WarmUp.TotalSeconds;
        double end = settings.FaultsEnd.TotalSeconds;
        double hard = settings.LoaderHardTimeout.TotalSeconds;
        var faults = new List<PlannedFault>();

        FaultKind[] redisKinds = [FaultKind.RedisStop, FaultKind.RedisPause, FaultKind.RedisFlush, FaultKind.PubSubKill, FaultKind.CorruptPayloads];
        Track(redisKinds, start + Uniform(random, 0, 2), kind => kind switch
        {
            FaultKind.RedisStop => new PlannedFault(kind, 0, Uniform(random, 1, 4), random.Next(0, 2), 0),
            FaultKind.RedisPause => new PlannedFault(kind, 0, Uniform(random, 3, 6), 0, 0),
            FaultKind.CorruptPayloads => new PlannedFault(kind, 0, 0, random.Next(5, 21), 0),
            _ => new PlannedFault(kind, 0, 0, 0, 0),
        }, () => Uniform(random, 2, 6));

        FaultKind[] databaseKinds = [FaultKind.DbErrorBurst, FaultKind.DbLatencySpike];
        Track(databaseKinds, start + Uniform(random, 1, 4), kind => kind switch
        {
            FaultKind.DbErrorBurst => new PlannedFault(kind, 0, Uniform(random, 1.5, 4), 0, Uniform(random, 0.3, 1.0)),
            _ => new PlannedFault(kind, 0, Uniform(random, 1.5, 4), 0, hard * Uniform(random, 1.3, 2.5)),
        }, () => Uniform(random, 3, 8));

        return faults.OrderBy(f => f.At).ToList();

        void Track(FaultKind[] kinds, double at, Func<FaultKind, PlannedFault> make, Func<double> gap)
        {
            var deck = new Queue<FaultKind>();
            while (true)
            {
                if (deck.Count == 0)
                {
                    foreach (FaultKind kind in kinds.OrderBy(_ => random.Next()))
                    {
                        deck.Enqueue(kind);
                    }
                }

                PlannedFault fault = make(deck.Dequeue()) with { At = Math.Round(at, 1) };
                if (fault.End > end)
                {
                    return;
                }

                faults.Add(fault);
                at = fault.End + gap();
            }
        }
    }

    private static double Uniform(Random random, double min, double max) => min + ((max - min) * random.NextDouble());
}
