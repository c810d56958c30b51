using System.Globalization;

namespace CacheGuard.Soak;

/// <summary>What a judged read served, relative to the writes that had completed before it started.</summary>
internal enum ReadVerdict
{
    Current,
    StaleWithinWindow,
    StaleBeyondWindow,
    Invalid,
}

/// <summary>
/// The staleness invariant, judged for every value a read returns. Time is real time (<see cref="Clock"/>): a write
/// "completes" when its <c>SetAsync</c>/<c>RemoveAsync</c> returns; a read is judged at the moment it <b>started</b>.
/// A read that started after the write of version v completed and served a version below v is stale; its age is the
/// time from the completion of the first such newer write to the read's start. Allowed age: zero when that newer write
/// was made by the reading node itself (read-your-writes), else <see cref="SoakSettings.PropagationWindow"/>, or, when a
/// fault that disturbs the backplane touched the interval, <see cref="SoakSettings.UnhealthyWindow"/> counted from the
/// later of the newer write's completion and the fault's end (Redis answering again). A value
/// for another key, or a version the database never reached, is invalid (an unexpected error).
/// </summary>
internal sealed class ReadJudge(SoakSettings settings, HealthTimeline health, SoakLog log)
{
    private const int SamplesPerKind = 20;

    private readonly long _healthyWindow = Clock.Ticks(settings.PropagationWindow);
    private readonly long _unhealthyWindow = Clock.Ticks(settings.UnhealthyWindow);
    private long _judged;
    private long _staleWithin;
    private long _staleBeyondHealthy;
    private long _staleBeyondUnhealthy;
    private long _staleAfterOwnWrite;
    private long _invalid;
    private long _maxAge;
    private readonly int[] _samples = new int[3];
    private int _invalidSamples;

    public long Judged => Interlocked.Read(ref _judged);

    public long StaleWithinWindow => Interlocked.Read(ref _staleWithin);

    /// <summary>Stale beyond the propagation window while Redis was healthy (not counting own-write violations).</summary>
    public long StaleBeyondHealthy => Interlocked.Read(ref _staleBeyondHealthy);

    /// <summary>Stale beyond the L1-lifetime window while a fault disturbed the backplane (not counting own-write violations).</summary>
    public long StaleBeyondUnhealthy => Interlocked.Read(ref _staleBeyondUnhealthy);

    /// <summary>A node served a version older than one it had itself written (any age).</summary>
    public long StaleAfterOwnWrite => Interlocked.Read(ref _staleAfterOwnWrite);

    /// <summary>The summary's S: every stale read beyond its window.</summary>
    public long StaleBeyondWindow => StaleBeyondHealthy + StaleBeyondUnhealthy + StaleAfterOwnWrite;

    public long Invalid => Interlocked.Read(ref _invalid);

    /// <summary>The oldest stale value served, in seconds (within or beyond the window).</summary>
    public double MaxAgeSeconds => Clock.Span(0, Interlocked.Read(ref _maxAge)).TotalSeconds;

    /// <summary>Judges a value <paramref name="node"/> served for <paramref name="row"/>, by a read that started at <paramref name="readStart"/>.</summary>
    public ReadVerdict Judge(int node, DbRow row, Row value, long readStart, string how)
    {
        Interlocked.Increment(ref _judged);
        if (!string.Equals(value.Key, row.Key, StringComparison.Ordinal))
        {
            return InvalidRead(node, row, $"served the value of {value.Key} (version {value.Version}) for {row.Key}", how);
        }

        WriteRecord? newer = null;
        WriteRecord? ownNewer = null;
        long supersededAt;
        long current;
        lock (row.Gate)
        {
            current = row.Version;
            if (value.Version > current)
            {
                newer = null;
                supersededAt = -1;
            }
            else
            {
                foreach (WriteRecord write in row.Writes)
                {
                    if (write.Version > value.Version && write.CompletedAt != 0 && write.CompletedAt <= readStart)
                    {
                        newer ??= write; // writes of a key are serialised: the first in version order completed first
                        if (write.Node == node)
                        {
                            ownNewer ??= write;
                        }
                    }
                }

                supersededAt = newer?.CompletedAt
                    ?? (value.Version < row.PrunedVersion ? row.PrunedCompletedAt : 0); // pruned: completed over 120 s ago
            }
        }

        if (supersededAt < 0)
        {
            return InvalidRead(node, row, $"served version {value.Version}, above the database's {current}", how);
        }

        if (supersededAt == 0)
        {
            return ReadVerdict.Current;
        }

        long age = readStart - supersededAt;
        InterlockedMax(ref _maxAge, age);
        bool disturbed = health.Disturbed(Disturbs.Backplane, supersededAt, readStart);

        // While Redis is unhealthy, and for the L1 lifetime after it answers again, another node may serve what it held
        // (or what a write sent before the fault left in L2 when the server ran it on resuming): the unhealthy window
        // counts from the later of the newer write and the end of the fault.
        long since = disturbed && health.LatestFaultEnd(Disturbs.Backplane, supersededAt, readStart) is { } faultEnd ? Math.Max(supersededAt, faultEnd) : supersededAt;
        long window = ownNewer is not null ? 0 : disturbed ? _unhealthyWindow : _healthyWindow;
        if (readStart - since <= window)
        {
            Interlocked.Increment(ref _staleWithin);
            return ReadVerdict.StaleWithinWindow;
        }

        string rule;
        int category;
        if (ownNewer is not null)
        {
            Interlocked.Increment(ref _staleAfterOwnWrite);
            category = 0;
            rule = $"after its own {ownNewer.Operation} of version {ownNewer.Version} (completed at {Clock.Seconds(ownNewer.CompletedAt):0.000}s)";
        }
        else if (disturbed)
        {
            Interlocked.Increment(ref _staleBeyondUnhealthy);
            category = 1;
            rule = $"beyond the unhealthy window {settings.UnhealthyWindow.TotalMilliseconds:0} ms after the later of the write and the fault's end (a Redis fault touched the interval)";
        }
        else
        {
            Interlocked.Increment(ref _staleBeyondHealthy);
            category = 2;
            rule = $"beyond the healthy window {settings.PropagationWindow.TotalMilliseconds:0} ms (Redis healthy throughout)";
        }

        int sample = Interlocked.Increment(ref _samples[category]);
        if (sample <= SamplesPerKind)
        {
            string writer = newer is null ? "a write pruned from the record" : $"node{newer.Node}'s {newer.Operation} of version {newer.Version} (database at {Clock.Seconds(newer.DatabaseAt):0.000}s, completed at {Clock.Seconds(newer.CompletedAt):0.000}s)";
            string text = string.Create(CultureInfo.InvariantCulture, $"VIOLATION staleness: node{node} {how} of {row.Key} started at {Clock.Seconds(readStart):0.000}s served version {value.Version} (database now at {current}) {age / (double)System.Diagnostics.Stopwatch.Frequency * 1000:0.0} ms after {writer}; {rule}");
            if (sample <= 3)
            {
                text += Environment.NewLine + "    history of " + row.Key + ":" + Environment.NewLine + SimulatedDatabase.History(row);
            }

            log.Write(text, console: sample == 1);
        }

        return ReadVerdict.StaleBeyondWindow;
    }

    private ReadVerdict InvalidRead(int node, DbRow row, string what, string how)
    {
        Interlocked.Increment(ref _invalid);
        if (Interlocked.Increment(ref _invalidSamples) <= SamplesPerKind)
        {
            log.Write($"VIOLATION invalid value: node{node} {how} of {row.Key} {what}", console: _invalidSamples <= 3);
        }

        return ReadVerdict.Invalid;
    }

    private static void InterlockedMax(ref long field, long value)
    {
        long current = Interlocked.Read(ref field);
        while (value > current)
        {
            long seen = Interlocked.CompareExchange(ref field, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }
}
