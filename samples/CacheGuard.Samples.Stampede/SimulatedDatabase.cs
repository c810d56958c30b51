namespace CacheGuard.Samples.Stampede;

/// <summary>
/// Stands in for a real database: every query takes <c>queryTime</c> and is counted, so the sample can show how
/// many queries each caching strategy lets through.
/// </summary>
internal sealed class SimulatedDatabase(TimeSpan queryTime)
{
    private int _queryCount;

    /// <summary>Gets the number of queries run so far.</summary>
    public int QueryCount => Volatile.Read(ref _queryCount);

    /// <summary>Looks a user up by id, as <c>SELECT * FROM users WHERE id = @id</c> would.</summary>
    public async Task<User> FindUserAsync(int id, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _queryCount);
        await Task.Delay(queryTime, cancellationToken);
        return new User(id, $"user-{id}");
    }
}
