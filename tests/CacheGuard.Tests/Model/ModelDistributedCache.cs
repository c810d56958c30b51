using Microsoft.Extensions.Caching.Distributed;

namespace CacheGuard.Tests.Model;

/// <summary>The failure a failing L2 throws.</summary>
internal sealed class ModelL2Exception(string message) : Exception(message);

/// <summary>
/// The L2 both nodes share: an in-memory store on the fake clock whose behaviour a step switches (<see cref="L2Mode"/>).
/// A call acts when it arrives, as a server would; in <see cref="L2Mode.Slow"/> its answer waits for a release step, so
/// completions come back in any order the program picks. Every call is recorded and attributed to the caller whose
/// flow made it.
/// </summary>
internal sealed class ModelDistributedCache(ModelWorld world) : IDistributedCache
{
    private static readonly byte[] Garbage = [0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03, 0x04, 0x05];

    private readonly Lock _gate = new();
    private readonly Dictionary<string, (byte[] Value, DateTimeOffset? Expires)> _entries = new(StringComparer.Ordinal); // guarded by _gate
    private readonly List<HeldAnswer> _parked = []; // guarded by _gate: answers held back in Slow mode, oldest first
    private int _ids;
    private volatile int _mode;

    public L2Mode Mode { get => (L2Mode)_mode; set => _mode = (int)value; }

    public int Held
    {
        get
        {
            lock (_gate)
            {
                return _parked.Count;
            }
        }
    }

    public byte[]? Get(string key) => throw new NotSupportedException("CacheGuard must use the async API.");

    public void Set(string key, byte[] value, DistributedCacheEntryOptions options) => throw new NotSupportedException("CacheGuard must use the async API.");

    public void Refresh(string key) => throw new NotSupportedException("CacheGuard must use the async API.");

    public void Remove(string key) => throw new NotSupportedException("CacheGuard must use the async API.");

    public Task RefreshAsync(string key, CancellationToken token = default) => Task.CompletedTask;

    public Task<byte[]?> GetAsync(string key, CancellationToken token = default)
    {
        (L2Call call, L2Mode mode) = Arrive(L2CallKind.Get, key);
        return Answer(call, mode, () =>
        {
            byte[]? stored = Read(key);
            return mode switch
            {
                L2Mode.Garbage => Garbage,
                L2Mode.Truncated => stored?[..(stored.Length / 2)],
                _ => stored,
            };
        }, token);
    }

    public Task SetAsync(string key, byte[] value, DistributedCacheEntryOptions options, CancellationToken token = default)
    {
        (L2Call call, L2Mode mode) = Arrive(L2CallKind.Set, key);
        return Answer(call, mode, () =>
        {
            DateTimeOffset now = world.Now;
            DateTimeOffset? expires = options.AbsoluteExpiration
                ?? (options.AbsoluteExpirationRelativeToNow is { } relative ? now + relative : (DateTimeOffset?)null)
                ?? (options.SlidingExpiration is { } sliding ? now + sliding : (DateTimeOffset?)null);
            lock (_gate)
            {
                _entries[key] = (value.ToArray(), expires);
            }

            return null;
        }, token);
    }

    public Task RemoveAsync(string key, CancellationToken token = default)
    {
        (L2Call call, L2Mode mode) = Arrive(L2CallKind.Remove, key);
        return Answer(call, mode, () =>
        {
            lock (_gate)
            {
                _entries.Remove(key);
            }

            return null;
        }, token);
    }

    /// <summary>Answers one held-back call (index taken modulo the count). Returns false when none waits.</summary>
    public bool Release(int pick)
    {
        HeldAnswer? chosen;
        lock (_gate)
        {
            if (_parked.Count == 0)
            {
                return false;
            }

            chosen = _parked[pick % _parked.Count];
            _parked.Remove(chosen);
        }

        chosen.Answer();
        return true;
    }

    public void ReleaseAll()
    {
        while (Release(0))
        {
        }
    }

    private byte[]? Read(string key)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue(key, out var entry) && (entry.Expires is null || entry.Expires > world.Now))
            {
                return entry.Value;
            }

            return null;
        }
    }

    private (L2Call Call, L2Mode Mode) Arrive(L2CallKind kind, string key)
    {
        L2Mode mode = Mode;
        var call = new L2Call
        {
            Id = Interlocked.Increment(ref _ids),
            OpId = ModelWorld.CurrentOp.Value?.Id ?? 0,
            Kind = kind,
            Key = key,
            Mode = mode,
            ArrivedAt = world.Next(),
        };
        world.L2Calls.Enqueue(call);
        return (call, mode);
    }

    private Task<byte[]?> Answer(L2Call call, L2Mode mode, Func<byte[]?> act, CancellationToken token)
    {
        switch (mode)
        {
            case L2Mode.FailSync:
                End(call, L2CallOutcome.Failed);
                throw new ModelL2Exception($"L2 {call.Kind} failed (synchronously).");
            case L2Mode.FailAsync:
                return FailAfterYieldAsync(call);
            case L2Mode.Hang:
                call.Outcome = L2CallOutcome.Hung;
                return new TaskCompletionSource<byte[]?>().Task; // never answers, ignores its token
            case L2Mode.Slow:
                byte[]? result = act(); // acts on arrival; only the answer waits
                var answer = new TaskCompletionSource<byte[]?>();
                var parked = new HeldAnswer(() =>
                {
                    End(call, L2CallOutcome.Succeeded);
                    answer.TrySetResult(result);
                });
                lock (_gate)
                {
                    _parked.Add(parked);
                }

                if (token.CanBeCanceled)
                {
                    token.Register(() =>
                    {
                        bool removed;
                        lock (_gate)
                        {
                            removed = _parked.Remove(parked);
                        }

                        if (removed)
                        {
                            End(call, L2CallOutcome.Cancelled);
                            answer.TrySetCanceled(token);
                        }
                    });
                }

                return answer.Task;
            default:
                byte[]? now = act();
                End(call, L2CallOutcome.Succeeded);
                return Task.FromResult(now);
        }
    }

    private async Task<byte[]?> FailAfterYieldAsync(L2Call call)
    {
        await Task.Yield();
        End(call, L2CallOutcome.Failed);
        throw new ModelL2Exception($"L2 {call.Kind} failed (asynchronously).");
    }

    private void End(L2Call call, L2CallOutcome outcome)
    {
        call.Outcome = outcome;
        call.EndedAt = world.Next();
    }

    private sealed record HeldAnswer(Action Answer);
}
