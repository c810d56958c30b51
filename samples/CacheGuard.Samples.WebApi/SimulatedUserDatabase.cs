using System.Collections.Concurrent;

namespace CacheGuard.Samples.WebApi;

/// <summary>
/// Stands in for a slow database: every query waits <c>latency</c> and is counted, so <c>GET /stats</c> can show how
/// many queries the cache let through. Users 1 to 1,000 exist from the start.
/// </summary>
internal class SimulatedUserDatabase(TimeSpan latency, TimeProvider time)
{
    private readonly ConcurrentDictionary<int, User> _rows = new(
        Enumerable.Range(1, 1000).Select(static id => KeyValuePair.Create(id, new User(id, $"user-{id}", $"user{id}@example.com"))));

    private long _queries;
    private long _writes;

    /// <summary>Gets the number of <c>SELECT</c>s run so far.</summary>
    public long QueryCount => Interlocked.Read(ref _queries);

    /// <summary>Gets the number of writes run so far.</summary>
    public long WriteCount => Interlocked.Read(ref _writes);

    /// <summary>As <c>SELECT * FROM users WHERE id = @id</c>: the user, or <see langword="null"/> when there is none.</summary>
    public async Task<User?> FindUserAsync(int id, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _queries);
        await WaitAsync(cancellationToken);
        return _rows.TryGetValue(id, out User? user) ? user : null;
    }

    /// <summary>As <c>UPSERT INTO users</c>.</summary>
    public async Task<User> SaveUserAsync(User user, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _writes);
        await WaitAsync(cancellationToken);
        _rows[user.Id] = user;
        return user;
    }

    /// <summary>The time a query spends "in the database".</summary>
    protected virtual Task WaitAsync(CancellationToken cancellationToken) => Task.Delay(latency, time, cancellationToken);
}
