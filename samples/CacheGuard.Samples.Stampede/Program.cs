// The cache stampede, made visible. Run with: dotnet run --project samples/CacheGuard.Samples.Stampede
//
// Round 1: 1,000 concurrent requests for two users hit a cold cache. Naive cache-aside sends nearly every one of
//          them to the database; CacheGuard sends one query per user and shares its result.
// Round 2: the same requests again are all served from the cache.
// Round 3: 10,000 users cached at the same instant with a 60 s lifetime: how many expire in the same second, with
//          and without jitter (the cache avalanche). A manual clock makes the minute pass instantly.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using CacheGuard;
using CacheGuard.Samples.Stampede;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.DependencyInjection;

const int Requests = 1_000;
const int HotUserId = 1;  // asked for by 9 requests in 10
const int ColdUserId = 2; // asked for by the rest
const int AvalancheKeys = 10_000;
const int FirstSecond = 59;
const int LastSecond = 67;
const int BarWidth = 40;

Console.OutputEncoding = Encoding.UTF8;
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture; // "1,000" on every machine
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var total = Stopwatch.StartNew();

Console.WriteLine("CacheGuard stampede sample");
Console.WriteLine("A user repository over a simulated database: every query takes 1 s and is counted.");
Console.WriteLine();

// The idiomatic setup: register the cache and the repository, resolve the repository.
var services = new ServiceCollection();
services.AddCoalescingCache();
services.AddSingleton(new SimulatedDatabase(TimeSpan.FromSeconds(1)));
services.AddSingleton<UserRepository>();
using ServiceProvider provider = services.BuildServiceProvider();
UserRepository users = provider.GetRequiredService<UserRepository>();
SimulatedDatabase database = provider.GetRequiredService<SimulatedDatabase>();

// The comparison: the same requests through a plain IMemoryCache, over a database of its own.
using var memoryCache = new MemoryCache(new MemoryCacheOptions());
var naiveDatabase = new SimulatedDatabase(TimeSpan.FromSeconds(1));
var naiveUsers = new NaiveUserRepository(memoryCache, naiveDatabase);

Console.WriteLine($"Round 1: cold cache, {Requests:N0} concurrent requests for 2 users (user {HotUserId} is hot: {Requests * 9 / 10:N0} requests; user {ColdUserId}: {Requests / 10:N0})");
Console.WriteLine("                               database queries     time");
RoundResult naive1 = await SendRequestsAsync(naiveDatabase, id => naiveUsers.GetAsync(id));
PrintRow("naive cache-aside", naive1);
RoundResult guarded1 = await SendRequestsAsync(database, id => users.GetAsync(id).AsTask());
PrintRow("CacheGuard", guarded1);
Console.WriteLine();

Console.WriteLine($"Round 2: warm cache, the same {Requests:N0} requests again");
RoundResult naive2 = await SendRequestsAsync(naiveDatabase, id => naiveUsers.GetAsync(id));
PrintRow("naive cache-aside", naive2);
RoundResult guarded2 = await SendRequestsAsync(database, id => users.GetAsync(id).AsTask());
PrintRow("CacheGuard", guarded2);
Console.WriteLine();

Console.WriteLine($"Round 3: avalanche, {AvalancheKeys:N0} users cached at the same instant with a 60 s lifetime (manual clock)");
Console.WriteLine("Keys that expired in each second after the write, found by reading every key once a second;");
Console.WriteLine("each one costs a database query.");
int[] withoutJitter = await CountExpiriesPerSecondAsync(jitterRatio: 0);
int[] withJitter = await CountExpiriesPerSecondAsync(jitterRatio: 0.1);
int scale = Math.Max(withoutJitter.Max(), withJitter.Max());
Console.WriteLine();
Console.WriteLine("  without jitter (JitterRatio = 0)");
PrintHistogram(withoutJitter, scale);
Console.WriteLine();
Console.WriteLine("  with jitter (JitterRatio = 0.1, the default: each lifetime stretched by a random 0-10 %)");
PrintHistogram(withJitter, scale);
Console.WriteLine();

Console.WriteLine("Summary");
Console.WriteLine($"  Round 1  database queries for {Requests:N0} concurrent requests: naive cache-aside {naive1.Queries:N0}, CacheGuard {guarded1.Queries:N0} (one per user)");
Console.WriteLine($"  Round 2  database queries once the cache is warm: naive cache-aside {naive2.Queries:N0}, CacheGuard {guarded2.Queries:N0}");
Console.WriteLine($"  Round 3  keys expiring in the worst second: {withoutJitter.Max():N0} without jitter, {withJitter.Max():N0} with JitterRatio 0.1 ({(double)withoutJitter.Max() / withJitter.Max():0.0}x fewer)");
Console.WriteLine($"  Finished in {total.Elapsed.TotalSeconds:0.0} s.");
return 0;

// Sends the round's requests at once, each on its own thread-pool work item, and counts the queries they cause.
static async Task<RoundResult> SendRequestsAsync(SimulatedDatabase database, Func<int, Task<User>> getUser)
{
    int queriesBefore = database.QueryCount;
    var clock = Stopwatch.StartNew();
    var requests = new Task<User>[Requests];
    for (int i = 0; i < Requests; i++)
    {
        int userId = i % 10 == 0 ? ColdUserId : HotUserId;
        requests[i] = Task.Run(() => getUser(userId));
    }

    await Task.WhenAll(requests);
    return new RoundResult(database.QueryCount - queriesBefore, clock.Elapsed);
}

static void PrintRow(string strategy, RoundResult result) =>
    Console.WriteLine($"  {strategy,-28} {result.Queries,16:N0} {result.Took.TotalSeconds,7:0.00} s");

// Caches AvalancheKeys users at one instant of a manual clock, then moves the clock to FirstSecond and on, one second
// at a time, up to LastSecond. After each step it reads every user: the ones that have expired since the last step
// are reloaded from the database (with a fresh lifetime, so they are not counted twice), and the number of queries is
// the number of keys that expired in that second. result[0] covers 0 s to FirstSecond; result[i] the second ending
// at FirstSecond + i.
static async Task<int[]> CountExpiriesPerSecondAsync(double jitterRatio)
{
    var clock = new ManualTimeProvider();
    var services = new ServiceCollection();
    services.AddSingleton<TimeProvider>(clock);
    services.AddCoalescingCache(o => o.JitterRatio = jitterRatio);
    services.AddSingleton(new SimulatedDatabase(TimeSpan.Zero)); // only the count matters here
    services.AddSingleton<UserRepository>();
    using ServiceProvider provider = services.BuildServiceProvider();
    UserRepository users = provider.GetRequiredService<UserRepository>();
    SimulatedDatabase database = provider.GetRequiredService<SimulatedDatabase>();

    for (int id = 1; id <= AvalancheKeys; id++)
    {
        await users.PrimeAsync(new User(id, $"user-{id}"));
    }

    var expired = new int[LastSecond - FirstSecond + 1];
    clock.Advance(TimeSpan.FromSeconds(FirstSecond));
    for (int i = 0; i < expired.Length; i++)
    {
        if (i > 0)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
        }

        int queriesBefore = database.QueryCount;
        for (int id = 1; id <= AvalancheKeys; id++)
        {
            await users.GetAsync(id);
        }

        expired[i] = database.QueryCount - queriesBefore;
    }

    return expired;
}

static void PrintHistogram(int[] expired, int scale)
{
    for (int i = 0; i < expired.Length; i++)
    {
        int end = FirstSecond + i;
        string label = i == 0 ? $"0-{end} s" : $"{end - 1}-{end} s";
        int width = (int)Math.Round((double)expired[i] * BarWidth / scale);
        Console.WriteLine($"    {label,8} | {new string('█', width)}{new string(' ', BarWidth - width)} {expired[i],6:N0}");
    }

    Console.WriteLine($"    {"total",8} | {new string(' ', BarWidth)} {expired.Sum(),6:N0}");
}

/// <summary>What one round of requests cost: database queries and wall-clock time.</summary>
internal readonly record struct RoundResult(int Queries, TimeSpan Took);
