using CacheGuard.Samples.WebApi;

// dotnet run --project samples/CacheGuard.Samples.WebApi
// then: curl localhost:5000/users/42 ; curl -X PUT localhost:5000/users/42 -H 'content-type: application/json' -d '{"name":"Ada","email":"ada@example.com"}' ; curl localhost:5000/stats
// On Redis: set ConnectionStrings__redis=localhost:6379 (or "ConnectionStrings:redis" in appsettings.json).
WebApplication app = WebApiApp.Build(args);
await app.RunAsync();
