namespace CacheGuard.Samples.WebApi;

/// <summary>Users, read through the cache: however many requests ask for a cold user at once, one query runs.</summary>
internal sealed class UserRepository(ICoalescingCache cache, SimulatedUserDatabase database)
{
    private static string Key(int id) => $"user:{id}";

    public ValueTask<User?> GetAsync(int id, CancellationToken cancellationToken) =>
        cache.GetOrLoadAsync(
            Key(id),
            (database, id),
            static (s, ct) => s.database.FindUserAsync(s.id, ct), // a missing user caches "not found" briefly
            cancellationToken: cancellationToken);

    public async Task<User> SaveAsync(User user, CancellationToken cancellationToken)
    {
        User saved = await database.SaveUserAsync(user, cancellationToken);
        await cache.RemoveAsync(Key(user.Id), cancellationToken); // the next read loads the new row
        return saved;
    }
}
