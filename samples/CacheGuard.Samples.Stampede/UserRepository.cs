namespace CacheGuard.Samples.Stampede;

/// <summary>
/// Reads users through CacheGuard: however many callers miss on a key at once, one database query runs for it and
/// they all share its result.
/// </summary>
internal sealed class UserRepository(ICoalescingCache cache, SimulatedDatabase database)
{
    /// <summary>How long a user stays cached (CacheGuard stretches it by a random 0-10 % by default).</summary>
    private static readonly CacheEntryOptions UserEntry = new() { Expiration = TimeSpan.FromSeconds(60) };

    /// <summary>Gets a user from the cache, or from the database on a miss.</summary>
    public ValueTask<User> GetAsync(int id, CancellationToken cancellationToken = default) =>
        // The state overload with a static lambda: the loader captures nothing, so no closure is allocated per call.
        cache.GetOrLoadAsync(
            UserKey(id),
            (database, id),
            static (state, ct) => state.database.FindUserAsync(state.id, ct),
            UserEntry,
            cancellationToken);

    /// <summary>Puts a user into the cache without a query, e.g. when warming it after a deploy.</summary>
    public ValueTask PrimeAsync(User user, CancellationToken cancellationToken = default) =>
        cache.SetAsync(UserKey(user.Id), user, UserEntry, cancellationToken);

    private static string UserKey(int id) => $"user:{id}";
}
