using System.Globalization;

namespace CacheGuard.Soak;

/// <summary>
/// The loads invariant, judged as each loader call reaches the database. A load that starts while another load of the
/// same key runs is an overlap. On the same node it is allowed only when the running load was abandoned (its callers
/// all cancelled, or a single load outlived <c>LoaderHardTimeout</c> and finishes in the background) or superseded: a
/// <c>SetAsync</c>/<c>RemoveAsync</c> of the key may have made the node forget its flight (a write still running, or
/// completed less than <see cref="SoakSettings.PropagationWindow"/> before the load started: its announcement may
/// arrive after). Across the fleet it is allowed only when abandoned, or
/// when a Redis fault that disturbs the lock touched the interval from the running load's lock attempt (at most one L2
/// read, <c>DistributedCacheTimeout</c>, before its start) to the new load's start. Everything else is a
/// violation, written to the log with both loads (and, for the first, the key's history).
/// </summary>
internal sealed class LoadWatch(SoakSettings settings, HealthTimeline health, SoakLog log)
{
    private const int SamplesPerKind = 15;

    private readonly long _hardTimeout = Clock.Ticks(settings.LoaderHardTimeout);
    private readonly long _propagation = Clock.Ticks(settings.PropagationWindow);
    private readonly long _lockToLoad = Clock.Ticks(settings.L2Timeout);
    private long _loads;
    private long _batchLoads;
    private long _nodeOverlaps;
    private long _fleetOverlaps;
    private long _fleetOverlapsWithBatch;
    private long _allowedAbandoned;
    private long _allowedSuperseded;
    private long _allowedDisturbed;
    private int _maxPerNode;
    private int _maxFleet;
    private int _maxRaw;
    private long _nodeOverlapsAfterAnnouncement;
    private int _nodeSamples;
    private int _fleetSamples;
    private int _fleetBatchSamples;

    public long Loads => Interlocked.Read(ref _loads);

    public long BatchLoads => Interlocked.Read(ref _batchLoads);

    /// <summary>Violations: a second live load of a key on one node.</summary>
    public long NodeOverlaps => Interlocked.Read(ref _nodeOverlaps);

    /// <summary>Of <see cref="NodeOverlaps"/>, those another node's completed-load announcement may explain.</summary>
    public long NodeOverlapsAfterAnnouncement => Interlocked.Read(ref _nodeOverlapsAfterAnnouncement);

    /// <summary>Violations: a second live load of a key in the fleet while Redis (and so the lock) was healthy.</summary>
    public long FleetOverlaps => Interlocked.Read(ref _fleetOverlaps);

    /// <summary>Of <see cref="FleetOverlaps"/>, those where either load came from a batch.</summary>
    public long FleetOverlapsWithBatch => Interlocked.Read(ref _fleetOverlapsWithBatch);

    public long AllowedAbandoned => Interlocked.Read(ref _allowedAbandoned);

    public long AllowedSuperseded => Interlocked.Read(ref _allowedSuperseded);

    public long AllowedDisturbed => Interlocked.Read(ref _allowedDisturbed);

    /// <summary>The most live loads of one key on one node at once.</summary>
    public int MaxPerNode => Volatile.Read(ref _maxPerNode);

    /// <summary>The most live loads of one key across the fleet at once while the lock was healthy (the summary's K).</summary>
    public int MaxFleet => Volatile.Read(ref _maxFleet);

    /// <summary>The most loads of one key running at once, counting every allowed overlap too.</summary>
    public int MaxRaw => Volatile.Read(ref _maxRaw);

    /// <summary>Judges a load about to start; the caller holds <c>row.Gate</c> and adds the load afterwards.</summary>
    public void OnStart(DbRow row, RunningLoad load)
    {
        Interlocked.Increment(ref _loads);
        if (load.Kind == LoadKind.Batch)
        {
            Interlocked.Increment(ref _batchLoads);
        }

        int perNode = 1;
        int fleet = 1;
        RunningLoad? nodePeer = null;
        string? nodeCause = null;
        RunningLoad? fleetPeer = null;
        foreach (RunningLoad other in row.Running)
        {
            bool abandoned = other.Cancelled || (other.Kind == LoadKind.Single && load.Start - other.Start > _hardTimeout);
            if (abandoned)
            {
                Interlocked.Increment(ref _allowedAbandoned);
                continue;
            }

            if (other.Node == load.Node)
            {
                if (WriteMayHaveForgotten(row, other))
                {
                    Interlocked.Increment(ref _allowedSuperseded);
                }
                else
                {
                    perNode++;
                    nodePeer = other;
                    nodeCause = LoadAnnouncementMayHaveForgotten(row, other)
                        ? "another node's load of the key completed within the propagation window of this one's start (its announcement makes a node forget its flight)"
                        : "no write or announcement explains it";
                }
            }

            // Fleet-wide, a superseded load still holds the key's lock, so only a lock fault excuses an overlap: one
            // between the running load's lock attempt (its L2 re-read comes between the lock and the loader) and this start.
            if (health.Disturbed(Disturbs.Lock, other.Start - _lockToLoad, load.Start))
            {
                Interlocked.Increment(ref _allowedDisturbed);
            }
            else
            {
                fleet++;
                fleetPeer ??= other;
            }
        }

        Max(ref _maxRaw, row.Running.Count + 1);
        Max(ref _maxPerNode, perNode);
        Max(ref _maxFleet, fleet);
        if (nodePeer is not null)
        {
            Interlocked.Increment(ref _nodeOverlaps);
            if (nodeCause!.StartsWith("another", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _nodeOverlapsAfterAnnouncement);
            }

            Sample(ref _nodeSamples, "per node", row, load, nodePeer, nodeCause);
        }

        if (fleetPeer is not null)
        {
            Interlocked.Increment(ref _fleetOverlaps);
            bool batch = load.Kind == LoadKind.Batch || fleetPeer.Kind == LoadKind.Batch;
            if (batch)
            {
                Interlocked.Increment(ref _fleetOverlapsWithBatch);
            }

            Sample(ref batch ? ref _fleetBatchSamples : ref _fleetSamples, "fleet-wide", row, load, fleetPeer, batch ? "a batch took part (batches take no lock)" : "two single loads, Redis healthy");
        }
    }

    /// <summary>
    /// Whether a write of the key may have made the node forget the running load's flight: a write still running, or
    /// one that completed less than the propagation window before the load started. (A flight starts before its load,
    /// after the L1, L2 and lock steps, so even the node's own write shortly before the load may have forgotten it;
    /// another node's write reaches it over the backplane within the propagation window.)
    /// </summary>
    private bool WriteMayHaveForgotten(DbRow row, RunningLoad running) =>
        row.LastInvalidationStart != 0
        && (row.LastInvalidationEnd == 0 || row.LastInvalidationEnd + _propagation > running.Start);

    /// <summary>Whether another node completed a load of the key late enough for its announcement to arrive after the running load started.</summary>
    private bool LoadAnnouncementMayHaveForgotten(DbRow row, RunningLoad running)
    {
        foreach (CompletedLoad completed in row.Recent)
        {
            if (completed.End != 0 && completed.Node != running.Node && completed.End + _propagation > running.Start)
            {
                return true;
            }
        }

        return false;
    }

    private void Sample(ref int taken, string scope, DbRow row, RunningLoad load, RunningLoad peer, string cause)
    {
        int sample = Interlocked.Increment(ref taken);
        if (sample > SamplesPerKind)
        {
            return;
        }

        string text = string.Create(
            CultureInfo.InvariantCulture,
            $"VIOLATION loads ({scope}): {row.Key} {load.Kind} load on node{load.Node} started while node{peer.Node}'s {peer.Kind} load " +
            $"(started at {Clock.Seconds(peer.Start):0.000}s, {Clock.Milliseconds(peer.Start, load.Start):0.0} ms earlier) was still running; " +
            $"last SetAsync/RemoveAsync of the key started at {(row.LastInvalidationStart == 0 ? "never" : Clock.Seconds(row.LastInvalidationStart).ToString("0.000", CultureInfo.InvariantCulture) + "s")}; {cause}");
        if (sample <= 2)
        {
            text += Environment.NewLine + "    history of " + row.Key + ":" + Environment.NewLine + SimulatedDatabase.HistoryHeld(row);
        }

        log.Write(text, console: sample == 1);
    }

    private static void Max(ref int field, int value)
    {
        int current = Volatile.Read(ref field);
        while (value > current)
        {
            int seen = Interlocked.CompareExchange(ref field, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }
}
