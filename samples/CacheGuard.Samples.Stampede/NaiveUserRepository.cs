using Microsoft.Extensions.Caching.Memory;

namespace CacheGuard.Samples.Stampede;

/// <summary>
/// The textbook cache-aside for comparison: look in the cache, on a miss query the database and store the result.
/// Every caller that misses before the first query returns runs its own query: the cache stampede.
/// </summary>
internal sealed class NaiveUserRepository(IMemoryCache cache, SimulatedDatabase database)
{
    public async Task<User> GetAsync(int id, CancellationToken cancellationToken = default)
    {
        string key = $"user:{id}";
        if (cache.TryGetValue(key, out User? cached) && cached is not null)
        {
            return cached;
        }

        User user = await database.FindUserAsync(id, cancellationToken);
        cache.Set(key, user, TimeSpan.FromSeconds(60));
        return user;
    }
}
