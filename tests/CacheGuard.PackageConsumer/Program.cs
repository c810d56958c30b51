// A user's first program with the packed CacheGuard packages: README.md's "Use it" example on the embedded default
// (no L2, no server). It prints one line, "package-consumer: ok ..." or "package-consumer: FAIL ...", which
// .ci/packages.sh checks.
using System.Reflection;
using CacheGuard;
using Microsoft.Extensions.DependencyInjection;

const int Callers = 100;
var guard = TimeSpan.FromSeconds(30); // only against a hang

var services = new ServiceCollection();
services.AddCoalescingCache(o => o.DefaultExpiration = TimeSpan.FromMinutes(10));
services.AddSingleton<UserDb>();
services.AddSingleton<UserRepository>();
await using ServiceProvider provider = services.BuildServiceProvider();
var users = provider.GetRequiredService<UserRepository>();
var db = provider.GetRequiredService<UserDb>();

var failures = new List<string>();
void Check(bool condition, string failure)
{
    if (!condition)
    {
        failures.Add(failure);
    }
}

// The packages this program restored: the version it was built to test, in both assemblies.
string expected = typeof(Program).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "CacheGuardVersion").Value!;
string core = PackageVersion(typeof(ICoalescingCache).Assembly);
string redis = PackageVersion(Assembly.Load(new AssemblyName("CacheGuard.Redis")));
Check(core == expected, $"CacheGuard is {core}, expected {expected}");
Check(redis == expected, $"CacheGuard.Redis is {redis}, expected {expected}");

// A cold key and many callers at once: the loader is held until every call has started, and runs once.
var calls = new Task<User?>[Callers];
for (int i = 0; i < Callers; i++)
{
    calls[i] = users.GetAsync(1, CancellationToken.None).AsTask();
}

db.OpenGate();
User?[] first = await Task.WhenAll(calls).WaitAsync(guard);
Check(first.All(u => u?.Name == "Ada"), "not every caller got user 1");
int coldLoads = db.Loads(1);
Check(coldLoads == 1, $"{Callers} callers on a cold key ran the loader {coldLoads} times");

// A hit is answered from memory, synchronously.
ValueTask<User?> hit = users.GetAsync(1, CancellationToken.None);
bool synchronousHit = hit.IsCompletedSuccessfully;
Check(synchronousHit && (await hit)?.Name == "Ada", "a hit did not complete synchronously with the cached user");

// RenameAsync removes the key: the next read loads the new value.
await users.RenameAsync(1, "Ada Lovelace", CancellationToken.None);
User? renamed = await users.GetAsync(1, CancellationToken.None).AsTask().WaitAsync(guard);
Check(renamed?.Name == "Ada Lovelace", $"after the rename the cache served '{renamed?.Name}'");
int loadsAfterRename = db.Loads(1);
Check(loadsAfterRename == 2, $"after the rename user 1 was loaded {loadsAfterRename} times in all, expected 2");

// "Not found" is cached: a second lookup of a missing user does not reach the database.
User? missing1 = await users.GetAsync(404, CancellationToken.None).AsTask().WaitAsync(guard);
User? missing2 = await users.GetAsync(404, CancellationToken.None).AsTask().WaitAsync(guard);
int notFoundLoads = db.Loads(404);
Check(missing1 is null && missing2 is null && notFoundLoads == 1, $"a missing user was loaded {notFoundLoads} times for two lookups");

Console.WriteLine(failures.Count == 0
    ? $"package-consumer: ok cacheguard={core} cacheguard.redis={redis} callers={Callers} loads={coldLoads} sync-hit={synchronousHit.ToString().ToLowerInvariant()} loads-after-rename={loadsAfterRename} not-found-loads={notFoundLoads}"
    : $"package-consumer: FAIL {string.Join("; ", failures)}");
return failures.Count == 0 ? 0 : 1;

static string PackageVersion(Assembly assembly)
{
    // "0.1.0+<commit>": the package version, then the source revision.
    string informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "";
    int plus = informational.IndexOf('+', StringComparison.Ordinal);
    return plus < 0 ? informational : informational[..plus];
}

/// <summary>README.md's repository: reads users through the cache, and removes a user's entry when it changes.</summary>
internal sealed class UserRepository(ICoalescingCache cache, UserDb db)
{
    public ValueTask<User?> GetAsync(int id, CancellationToken ct) =>
        cache.GetOrLoadAsync(
            $"user:{id}",
            (db, id),                                              // state: no closure allocated
            static (s, token) => s.db.FindUserAsync(s.id, token),  // runs once per key, however many callers
            cancellationToken: ct);

    public async Task RenameAsync(int id, string name, CancellationToken ct)
    {
        await db.RenameAsync(id, name, ct);
        await cache.RemoveAsync($"user:{id}", ct);                 // next read loads the new value
    }
}

internal sealed record User(int Id, string Name);

/// <summary>A stand-in database with one user; it counts loads per id and holds loads until the gate opens.</summary>
internal sealed class UserDb
{
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Dictionary<int, int> _loads = [];
    private string _name = "Ada";

    public void OpenGate() => _gate.TrySetResult();

    public int Loads(int id)
    {
        lock (_loads)
        {
            return _loads.GetValueOrDefault(id);
        }
    }

    public async Task<User?> FindUserAsync(int id, CancellationToken ct)
    {
        lock (_loads)
        {
            _loads[id] = _loads.GetValueOrDefault(id) + 1;
        }

        await _gate.Task.WaitAsync(ct);
        return id == 1 ? new User(1, _name) : null;
    }

    public Task RenameAsync(int id, string name, CancellationToken ct)
    {
        _name = name;
        return Task.CompletedTask;
    }
}
