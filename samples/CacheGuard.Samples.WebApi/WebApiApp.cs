using Microsoft.AspNetCore.Http.HttpResults;

namespace CacheGuard.Samples.WebApi;

/// <summary>Builds the sample application: a users API read through CacheGuard.</summary>
internal static class WebApiApp
{
    /// <summary>Builds the application from <paramref name="args"/> and configuration.</summary>
    /// <param name="args">Command-line arguments (<c>--urls</c>, <c>--ConnectionStrings:redis=...</c>...).</param>
    /// <param name="configureServices">Runs after the sample's own registrations: a test's way to swap a service.</param>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? configureServices = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateBuilder(args);

        TimeSpan latency = builder.Configuration.GetValue("Database:Latency", TimeSpan.FromMilliseconds(200));
        builder.Services.AddSingleton(sp => new SimulatedUserDatabase(latency, sp.GetService<TimeProvider>() ?? TimeProvider.System));
        builder.Services.AddSingleton<UserRepository>();
        builder.Services.AddSingleton<CacheStats>();

        // The one cache: options from the "CacheGuard" section; Redis as L2 when a connection string is set.
        ICoalescingCacheBuilder cache = builder.Services.AddCoalescingCache(builder.Configuration.GetSection("CacheGuard"));
        if (builder.Configuration.GetConnectionString("redis") is { Length: > 0 } redis)
        {
            cache.WithRedis(redis);
        }

        configureServices?.Invoke(builder.Services);

        WebApplication app = builder.Build();
        app.Services.GetRequiredService<CacheStats>(); // listen from the start

        app.MapGet("/users/{id:int}", async Task<Results<Ok<User>, NotFound>> (int id, UserRepository users, CancellationToken ct) =>
            await users.GetAsync(id, ct) is { } user ? TypedResults.Ok(user) : TypedResults.NotFound());

        app.MapPut("/users/{id:int}", async (int id, UserUpdate update, UserRepository users, CancellationToken ct) =>
            TypedResults.Ok(await users.SaveAsync(new User(id, update.Name, update.Email), ct)));

        app.MapGet("/stats", (SimulatedUserDatabase database, CacheStats stats) => TypedResults.Ok(new
        {
            DatabaseQueries = database.QueryCount,
            DatabaseWrites = database.WriteCount,
            Cache = stats.Snapshot(),
        }));

        return app;
    }
}
