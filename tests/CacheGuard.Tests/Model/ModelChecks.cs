namespace CacheGuard.Tests.Model;

/// <summary>The properties the harness checks; each has its own test, so each shrinks to its own minimal program.</summary>
internal enum ModelProperty
{
    /// <summary>No caller sees a value older than a write (db write, then Set/Remove, or a tag or "*" invalidation) that completed before its call started.</summary>
    NoValueOlderThanACompletedWrite,

    /// <summary>A value is served past its lifetime only as fail-safe allows: with fail-safe on, after a failed or slow load, and never past FailSafeMaxDuration.</summary>
    StaleOnlyAsFailSafeAllows,

    /// <summary>
    /// At most one loader runs per key and node, except that a write (invoked after the earlier load's flight began and
    /// before the later loader started) may start a fresh load while the superseded one still runs.
    /// </summary>
    OneLoaderPerKey,

    /// <summary>
    /// Every call returns, and all background work ends, once everything is released and the clock has passed every
    /// timeout; and on the fake clock, a write, a lookup or a load with a hard timeout returns within its bound.
    /// </summary>
    EveryCallCompletes,

    /// <summary>Nothing raises TaskScheduler.UnobservedTaskException.</summary>
    NoUnobservedTaskExceptions,

    /// <summary>A caller sees only the loader's own failure, or a TimeoutException where its key has a hard timeout; writes and lookups never fail.</summary>
    OnlyAllowedErrors,
}

/// <summary>
/// Checks one property over a run's history. Real time is the run's global order (each event took a number from one
/// atomic counter); "completed before the call started" means the write's return number is below the read's invocation
/// number. Lifetimes are checked on the fake clock.
/// </summary>
internal static class ModelChecks
{
    public static List<string> Check(ModelWorld world, ModelProperty property) => property switch
    {
        ModelProperty.NoValueOlderThanACompletedWrite => Freshness(world),
        ModelProperty.StaleOnlyAsFailSafeAllows => Lifetimes(world),
        ModelProperty.OneLoaderPerKey => OneLoader(world),
        ModelProperty.EveryCallCompletes => Completion(world),
        ModelProperty.NoUnobservedTaskExceptions => [.. world.UnobservedExceptions.Select(e => "unobserved task exception: " + e)],
        _ => Errors(world),
    };

    private static List<string> Freshness(ModelWorld world)
    {
        var violations = new List<string>();
        List<OpRecord> writes = [.. world.Ops.Where(o => o.IsWrite && o.Returned)];
        foreach (OpRecord read in world.Ops.Where(o => o.IsRead && o.Returned && o.Error is null))
        {
            foreach (int key in read.Keys)
            {
                if (!read.Values.TryGetValue(key, out long stamp))
                {
                    if (read.Kind is not (OpKind.TryGet or OpKind.AuditTryGet))
                    {
                        violations.Add($"{read.Describe()} returned no value for {ModelConfig.KeyName(key)}, though its loader returns every key.");
                    }
                    else if (read.Lookup == CacheLookupStatus.CachedNotFound)
                    {
                        violations.Add($"{read.Describe()} found a cached \"not found\" for {ModelConfig.KeyName(key)}, though no loader ever returned null.");
                    }

                    continue;
                }

                if (!world.Producers.TryGetValue(stamp, out Producer? value) || value.Key != key)
                {
                    violations.Add($"{read.Describe()} returned {stamp} for {ModelConfig.KeyName(key)}: a value never produced for that key ({value?.Describe() ?? "unknown"}).");
                    continue;
                }

                foreach (OpRecord write in writes)
                {
                    if (write.ReturnedAt < read.InvokedAt && write.Written.TryGetValue(key, out long floor) && value.Version < floor
                        && !ConcurrentWriters(world, value, write) && !LagAllowed(world, read, write))
                    {
                        violations.Add(
                            $"{read.Describe()} (invoked at #{read.InvokedAt}) returned {value.Describe()}, but {write.Describe()} had written " +
                            $"{ModelConfig.KeyName(key)} v{floor} and returned at #{write.ReturnedAt}, before the read began.");
                        break;
                    }
                }
            }
        }

        return violations;
    }

    /// <summary>A value written by a Set that overlapped the later write: either order is a valid outcome of two concurrent writers.</summary>
    private static bool ConcurrentWriters(ModelWorld world, Producer value, OpRecord write)
    {
        if (!value.FromSet || world.Op(value.SourceId) is not { } set)
        {
            return false;
        }

        return set.InvokedAt < write.ReturnedAt && write.InvokedAt < (set.Returned ? set.ReturnedAt : long.MaxValue);
    }

    /// <summary>
    /// Another node may lag a write whose own L2 update did not land (it failed, timed out, or waited for replay): until
    /// then L2 still holds the older value, for at most its lifetime plus the fail-safe window. The writer's node may not.
    /// </summary>
    private static bool LagAllowed(ModelWorld world, OpRecord read, OpRecord write)
    {
        if (read.Node == write.Node || !world.Config.HasL2)
        {
            return false;
        }

        List<L2Call> updates = [.. world.L2Calls.Where(c => c.OpId == write.Id && c.Kind != L2CallKind.Get)];
        bool landed = updates.Count > 0
            && updates.TrueForAll(c => c.Outcome == L2CallOutcome.Succeeded && c.EndedAt < write.ReturnedAt);
        if (landed)
        {
            return false;
        }

        TimeSpan window = ModelTimings.Expiration + (write.Keys.Any(k => world.Config.Keys[k].FailSafe) ? ModelTimings.FailSafeMax : TimeSpan.Zero);
        return read.InvokedClock < write.ReturnedClock + window;
    }

    private static List<string> Lifetimes(ModelWorld world)
    {
        var violations = new List<string>();
        foreach (OpRecord read in world.Ops.Where(o => o.IsRead && o.Returned && o.Error is null))
        {
            foreach ((int key, long stamp) in read.Values)
            {
                if (!world.Producers.TryGetValue(stamp, out Producer? value) || StoredBy(world, value, read) is not { } stored)
                {
                    continue; // an unknown value is the freshness check's to report
                }

                KeyPolicy policy = world.Config.Keys[key];
                TimeSpan age = read.InvokedClock - stored;
                TimeSpan limit = ModelTimings.Expiration + (policy.FailSafe ? ModelTimings.FailSafeMax : TimeSpan.Zero);
                if (age > limit)
                {
                    violations.Add(
                        $"{read.Describe()} returned {value.Describe()} {Seconds(age)} after it was stored (at {Clock(stored)} or earlier), past its " +
                        $"lifetime of {Seconds(ModelTimings.Expiration)}{(policy.FailSafe ? $" plus FailSafeMaxDuration {Seconds(ModelTimings.FailSafeMax)}" : string.Empty)}.");
                }
                else if (age > ModelTimings.Expiration && !LoadTroubled(world, read, key, policy))
                {
                    violations.Add(
                        $"{read.Describe()} returned {value.Describe()}, expired {Seconds(age - ModelTimings.Expiration)} before the call, though no load of " +
                        $"{ModelConfig.KeyName(key)} on {ModelConfig.NodeName(read.Node)} failed or ran past a timeout around it (fail-safe serves stale values only then).");
                }
            }
        }

        return violations;
    }

    /// <summary>
    /// The latest clock time by which the value's lifetime had surely started: a Set's return; for a loaded value, the
    /// first return of another call that got it (the cache stores a load before completing it), else the loader's end
    /// plus one clock step (the runner waits for quiet before moving the clock; the slack covers a late continuation).
    /// </summary>
    private static DateTimeOffset? StoredBy(ModelWorld world, Producer value, OpRecord read)
    {
        if (value.FromSet)
        {
            return world.Op(value.SourceId) is { Returned: true } set ? set.ReturnedClock : null;
        }

        DateTimeOffset? first = world.Ops
            .Where(o => o != read && o.Returned && o.Error is null && o.Values.Values.Contains(value.Stamp))
            .Select(o => (DateTimeOffset?)o.ReturnedClock)
            .Min();
        LoaderRun? loader = world.Loaders.FirstOrDefault(l => l.Id == value.SourceId);
        DateTimeOffset? ended = loader is { EndedAt: > 0 } ? loader.EndedClock + TimeSpan.FromSeconds(ModelTimings.MaxAdvanceSeconds) : null;
        return first is null ? ended : ended is null ? first : first < ended ? first : ended;
    }

    /// <summary>
    /// Whether the read itself waited past its timeout, or a load of the key on the read's node failed, was cancelled, or
    /// outran a timeout, within the throttle window before the read or during it.
    /// </summary>
    private static bool LoadTroubled(ModelWorld world, OpRecord read, int key, KeyPolicy policy)
    {
        if (!policy.FailSafe)
        {
            return false;
        }

        DateTimeOffset from = read.InvokedClock - ModelTimings.FailSafeThrottle;
        TimeSpan? slow = policy.SoftTimeout ? ModelTimings.SoftTimeout : policy.HardTimeout ? ModelTimings.HardTimeout : null;

        // A caller's own soft (or hard) timeout measures its whole wait, whatever stage was slow (L2, the lock or the
        // loader): once it passed, the stale value is what the policy promises.
        if (slow is { } own && read.Returned && read.ReturnedClock - read.InvokedClock >= own)
        {
            return true;
        }

        DateTimeOffset last = world.Now;
        return world.Loaders.Any(l =>
        {
            DateTimeOffset end = l.EndedAt > 0 ? l.EndedClock : last;
            bool troubled = l.Outcome is LoaderOutcome.Failed or LoaderOutcome.Cancelled || (slow is { } s && end - l.StartedClock >= s);
            return troubled && l.Node == read.Node && l.Keys.Contains(key) && end >= from && l.StartedClock <= read.ReturnedClock;
        });
    }

    private static List<string> OneLoader(ModelWorld world)
    {
        var violations = new List<string>();
        foreach (LoaderOverlap overlap in world.Overlaps)
        {
            // The earlier load's flight began when its leader called (a superseded flight may reach its loader late).
            long flightBegan = world.Op(overlap.Earlier.OpId)?.InvokedAt ?? overlap.Earlier.StartedAt;
            bool superseded = world.Ops.Any(w => w.IsWrite && w.Keys.Contains(overlap.Key)
                && w.InvokedAt > flightBegan && w.InvokedAt < overlap.Later.StartedAt);
            if (!superseded)
            {
                violations.Add(
                    $"{overlap.Later.Name} (for {Caller(world, overlap.Later)}) started {ModelConfig.KeyName(overlap.Key)} on {ModelConfig.NodeName(overlap.Later.Node)} at #{overlap.Later.StartedAt} " +
                    $"while {overlap.Earlier.Name} (for {Caller(world, overlap.Earlier)}, started at #{overlap.Earlier.StartedAt}, {Clock(overlap.Earlier.StartedClock)}) still ran, with no write of the key in between.");
            }
        }

        return violations;
    }

    private static List<string> Completion(ModelWorld world)
    {
        var violations = new List<string>();
        foreach (OpRecord op in world.Ops.Where(o => !o.Returned))
        {
            violations.Add($"{op.Describe()} never returned, though every loader and L2 call was released and the clock passed every timeout.");
        }

        foreach (OpRecord op in world.Ops.Where(o => o.Step > 0))
        {
            if (Bound(world, op) is not { } bound)
            {
                continue; // a load without a hard timeout may wait for its loader as long as that takes
            }

            DateTimeOffset end = op.Returned ? op.ReturnedClock : world.Now;
            if (end - op.InvokedClock > bound + TimeSpan.FromSeconds(ModelTimings.MaxAdvanceSeconds))
            {
                violations.Add(
                    $"{op.Describe()} took {Seconds(end - op.InvokedClock)} on the clock ({Clock(op.InvokedClock)} to {Clock(end)}); its bound is {Seconds(bound)} " +
                    $"(hard timeout, if any, plus {L2CallsPerCall} L2 deadlines), with {ModelTimings.MaxAdvanceSeconds} s of slack for a late continuation.");
            }
        }

        for (int n = 0; n < world.BackgroundLeft.Length; n++)
        {
            if (world.BackgroundLeft[n] > 0)
            {
                violations.Add($"node {ModelConfig.NodeName(n)} still had {world.BackgroundLeft[n]} background task(s) running at the end.");
            }
        }

        return violations;
    }

    private const int L2CallsPerCall = 4;

    /// <summary>How long a call may take on the fake clock: writes and lookups wait only for L2 (each call bounded by its deadline); loads with a hard timeout add it.</summary>
    private static TimeSpan? Bound(ModelWorld world, OpRecord op)
    {
        TimeSpan l2 = ModelTimings.L2Timeout * L2CallsPerCall;
        if (op.IsWrite || op.Kind == OpKind.TryGet)
        {
            return l2;
        }

        return op.Keys.Any(k => world.Config.Keys[k].HardTimeout) ? ModelTimings.HardTimeout + l2 : null;
    }

    private static List<string> Errors(ModelWorld world)
    {
        var violations = new List<string>();
        foreach (OpRecord op in world.Ops.Where(o => o.Returned && o.Error is not null))
        {
            Exception error = op.Error!;
            bool allowed = op.Kind is OpKind.Get or OpKind.GetMany or OpKind.AuditGet && error switch
            {
                ModelLoaderException failed => failed.Run.Node == op.Node && failed.Run.Keys.Intersect(op.Keys).Any(),
                TimeoutException => op.Keys.Any(k => world.Config.Keys[k].HardTimeout),
                _ => false,
            };
            if (!allowed)
            {
                violations.Add($"{op.Describe()} threw {error.GetType().Name}: {error.Message}");
            }
        }

        return violations;
    }

    private static string Caller(ModelWorld world, LoaderRun run) => world.Op(run.OpId)?.Name ?? "background";

    public static string Seconds(TimeSpan span) => $"{span.TotalSeconds:0.###} s";

    public static string Clock(DateTimeOffset at) => $"t={(at - FakeTimeProvider.Epoch).TotalSeconds:0.###} s";
}
