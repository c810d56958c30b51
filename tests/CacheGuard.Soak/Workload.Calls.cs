namespace CacheGuard.Soak;

/// <summary>
/// Each kind of call, measured and judged: its latency (and whether it completed synchronously, i.e. from L1) goes to
/// the timeline, its exception to <see cref="CallErrors"/>, every value it returns to <see cref="ReadJudge"/>, and a
/// call that was not an L1 hit to <see cref="StallWatch"/>.
/// </summary>
internal sealed partial class Workload
{
    /// <summary>One <c>GetOrLoadAsync</c>; returns the value (null when the call failed) and whether L1 answered it.</summary>
    private async Task<(Row? Value, bool Hit)> ReadOneAsync(SoakNode node, DbRow row, TimeSpan? cancelAfter, string operation)
    {
        row.EverRead = true;
        Interlocked.Increment(ref _calls);
        using CancellationTokenSource? cancel = cancelAfter is { } after ? new CancellationTokenSource(after) : null;
        long start = Clock.Now;
        bool hit = false;
        try
        {
            ValueTask<Row> pending = node.Cache.GetOrLoadAsync(
                row.Key,
                (Db: db, Node: node.Id, Row: row),
                static (s, ct) => s.Db.LoadAsync(s.Node, s.Row, ct),
                OptionsFor(row),
                cancel?.Token ?? CancellationToken.None);
            long returned = Clock.Now;
            hit = pending.IsCompletedSuccessfully;
            Row value = pending.IsCompletedSuccessfully ? pending.Result : await pending;
            long end = hit ? returned : Clock.Now;
            timeline.RecordCall(start, end, hit);
            Judge(node, row, value, start, hit ? $"{operation} (L1 hit)" : operation);
            if (!hit)
            {
                stalls.OnMiss(node.Id, operation, [row], start, end);
            }

            return (value, hit);
        }
        catch (Exception ex)
        {
            Failed(node, operation, row, [row], start, ex, cancel);
            return (null, false);
        }
    }

    private async Task ReadManyAsync(SoakNode node, List<DbRow> rows, TimeSpan? cancelAfter)
    {
        foreach (DbRow row in rows)
        {
            row.EverRead = true;
        }

        Interlocked.Increment(ref _calls);
        using CancellationTokenSource? cancel = cancelAfter is { } after ? new CancellationTokenSource(after) : null;
        long start = Clock.Now;
        try
        {
            ValueTask<IReadOnlyDictionary<string, Row>> pending = node.Cache.GetOrLoadManyAsync(
                rows.Select(r => r.Key),
                (Db: db, Node: node.Id),
                static (s, keys, ct) => s.Db.LoadManyAsync(s.Node, keys, ct),
                OptionsFor(rows[0]),
                cancel?.Token ?? CancellationToken.None);
            long returned = Clock.Now;
            bool hit = pending.IsCompletedSuccessfully;
            IReadOnlyDictionary<string, Row> values = pending.IsCompletedSuccessfully ? pending.Result : await pending;
            long end = hit ? returned : Clock.Now;
            timeline.RecordCall(start, end, hit);
            foreach (DbRow row in rows)
            {
                if (values.TryGetValue(row.Key, out Row? value))
                {
                    Judge(node, row, value, start, hit ? "GetOrLoadManyAsync (L1 hit)" : "GetOrLoadManyAsync");
                }
                else
                {
                    // Every row exists: a batch that leaves one out lost it.
                    errors.RecordInvalid("GetOrLoadManyAsync: a key missing from the result");
                    timeline.RecordError(ErrorKind.Unexpected);
                    log.Write($"VIOLATION caller error: node{node.Id} GetOrLoadManyAsync left out {row.Key}, which exists", console: true);
                }
            }

            if (!hit)
            {
                stalls.OnMiss(node.Id, "GetOrLoadManyAsync", rows, start, end);
            }
        }
        catch (Exception ex)
        {
            Failed(node, "GetOrLoadManyAsync", rows[0], rows, start, ex, cancel);
        }
    }

    private async Task TryGetAsync(SoakNode node, DbRow row, TimeSpan? cancelAfter)
    {
        row.EverRead = true;
        Interlocked.Increment(ref _calls);
        using CancellationTokenSource? cancel = cancelAfter is { } after ? new CancellationTokenSource(after) : null;
        long start = Clock.Now;
        try
        {
            ValueTask<CacheLookup<Row>> pending = node.Cache.TryGetAsync<Row>(row.Key, cancel?.Token ?? CancellationToken.None);
            long returned = Clock.Now;
            bool hit = pending.IsCompletedSuccessfully;
            CacheLookup<Row> lookup = pending.IsCompletedSuccessfully ? pending.Result : await pending;
            long end = hit ? returned : Clock.Now;
            timeline.RecordCall(start, end, hit);
            if (lookup.Status == CacheLookupStatus.Found)
            {
                Judge(node, row, lookup.Value!, start, hit ? "TryGetAsync (L1 hit)" : "TryGetAsync");
            }
            else if (lookup.Status == CacheLookupStatus.CachedNotFound)
            {
                errors.RecordInvalid("TryGetAsync: 'not found' cached for a row that exists");
                timeline.RecordError(ErrorKind.Unexpected);
                log.Write($"VIOLATION caller error: node{node.Id} TryGetAsync({row.Key}) found a cached 'not found'; the row exists", console: true);
            }

            if (!hit)
            {
                stalls.OnMiss(node.Id, "TryGetAsync", [row], start, end);
            }
        }
        catch (Exception ex)
        {
            Failed(node, "TryGetAsync", row, [row], start, ex, cancel);
        }
    }

    /// <summary>Writes the row, then tells the cache on this node; writes of one key are serialised fleet-wide.</summary>
    private async Task WriteAsync(SoakNode node, DbRow row, bool remove)
    {
        string operation = remove ? "RemoveAsync" : "SetAsync";
        Interlocked.Increment(ref _writesInFlight);
        await row.WriteGate.WaitAsync();
        try
        {
            if (_writesFrozen)
            {
                return;
            }

            Interlocked.Increment(ref _calls);
            Interlocked.Increment(ref _writes);
            long start = Clock.Now;
            try
            {
                (WriteRecord record, Row value) = db.Write(node.Id, row, remove ? "remove" : "set");
                if (remove)
                {
                    await node.Cache.RemoveAsync(row.Key);
                }
                else
                {
                    await node.Cache.SetAsync(row.Key, value, OptionsFor(row));
                }

                long end = Clock.Now;
                SimulatedDatabase.Completed(row, record, end);
                timeline.RecordCall(start, end, l1Hit: false);
            }
            catch (Exception ex)
            {
                timeline.RecordCall(start, Clock.Now, l1Hit: false);
                timeline.RecordError(errors.Record(node.Id, operation, row.Key, ex, callerCancelled: false));
            }
        }
        finally
        {
            row.WriteGate.Release();
            Interlocked.Decrement(ref _writesInFlight);
        }
    }

    private async Task RemoveByTagAsync(SoakNode node, string tag)
    {
        if (_writesFrozen)
        {
            return;
        }

        Interlocked.Increment(ref _calls);
        long start = Clock.Now;
        try
        {
            await node.Cache.RemoveByTagAsync(tag);
            timeline.RecordCall(start, Clock.Now, l1Hit: false);
        }
        catch (Exception ex)
        {
            timeline.RecordCall(start, Clock.Now, l1Hit: false);
            timeline.RecordError(errors.Record(node.Id, "RemoveByTagAsync", tag, ex, callerCancelled: false));
        }
    }

    private void Judge(SoakNode node, DbRow row, Row value, long start, string how)
    {
        ReadVerdict verdict = judge.Judge(node.Id, row, value, start, how);
        if (verdict == ReadVerdict.StaleBeyondWindow)
        {
            timeline.RecordStale();
        }
        else if (verdict == ReadVerdict.Invalid)
        {
            errors.RecordInvalid($"{how}: an invalid value");
            timeline.RecordError(ErrorKind.Unexpected);
        }
    }

    private void Failed(SoakNode node, string operation, DbRow row, IReadOnlyList<DbRow> rows, long start, Exception ex, CancellationTokenSource? cancel)
    {
        long end = Clock.Now;
        timeline.RecordCall(start, end, l1Hit: false);
        bool cancelled = cancel?.IsCancellationRequested == true;
        ErrorKind kind = errors.Record(node.Id, operation, row.Key, ex, cancelled);
        timeline.RecordError(kind);
        if (kind != ErrorKind.Cancelled)
        {
            stalls.OnMiss(node.Id, operation, rows, start, end);
        }
    }
}
