using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CacheGuard.Ecosystem.Tests.Support;
using CacheGuard.Samples.WebApi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Ecosystem.Tests;

/// <summary>
/// The web sample on real Kestrel, on a free loopback port, with its database held at a gate so the test decides
/// when the one query may finish.
/// </summary>
public class WebSampleTests
{
    private const int Requests = 1000;

    private static async Task<(WebApplication App, HttpClient Client, GatedDatabase Database)> StartAsync()
    {
        var database = new GatedDatabase();
        WebApplication app = WebApiApp.Build(
            ["--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Default=Warning", "--environment", "Testing"],
            services =>
            {
                services.AddSingleton<SimulatedUserDatabase>(database);
                services.AddLogging(b => b.SetMinimumLevel(LogLevel.Warning));
            });
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Requests }) { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(60) };
        return (app, client, database);
    }

    [Test]
    public async Task AThousandConcurrentRequestsForOneColdUser_RunOneDatabaseQuery()
    {
        var (app, client, database) = await StartAsync();
        await using var _ = app;
        using var __ = client;
        using var meters = new MeterCapture("default", scope: app.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>());
        meters.WhenReaches("cacheguard.cache.misses", Requests, out Task allMissed);

        Task<HttpResponseMessage>[] responses = [.. Enumerable.Range(0, Requests).Select(_ => client.GetAsync(new Uri("/users/7", UriKind.Relative)))];

        // Every request has reached the cache (and started or joined the load) before the query may finish.
        await allMissed.WaitAsync(TimeSpan.FromSeconds(60));
        database.Open();
        HttpResponseMessage[] done = await Task.WhenAll(responses).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.That(done.Select(r => r.StatusCode), Has.All.EqualTo(HttpStatusCode.OK));
        string[] bodies = await Task.WhenAll(done.Select(r => r.Content.ReadAsStringAsync()));
        Assert.That(bodies.Distinct().ToArray(), Is.EqualTo(new[] { """{"id":7,"name":"user-7","email":"user7@example.com"}""" }));
        Assert.That(database.QueryCount, Is.EqualTo(1), "exactly one database query");

        using JsonDocument stats = JsonDocument.Parse(await client.GetStringAsync(new Uri("/stats", UriKind.Relative)));
        JsonElement cache = stats.RootElement.GetProperty("cache");
        Assert.That(stats.RootElement.GetProperty("databaseQueries").GetInt64(), Is.EqualTo(1));
        Assert.That(cache.GetProperty("cacheguard.cache.misses").GetInt64(), Is.EqualTo(Requests));
        Assert.That(cache.GetProperty("cacheguard.cache.loads").GetInt64(), Is.EqualTo(1));
        Assert.That(cache.GetProperty("cacheguard.cache.coalesced").GetInt64(), Is.EqualTo(Requests - 1));
        foreach (HttpResponseMessage response in done)
        {
            response.Dispose();
        }
    }

    [Test]
    public async Task Put_WritesAndInvalidates_SoTheNextGetSeesTheNewValue()
    {
        var (app, client, database) = await StartAsync();
        await using var _ = app;
        using var __ = client;
        database.Open();

        Assert.That((await client.GetFromJsonAsync<JsonElement>(new Uri("/users/3", UriKind.Relative))).GetProperty("name").GetString(), Is.EqualTo("user-3"));
        Assert.That((await client.GetFromJsonAsync<JsonElement>(new Uri("/users/3", UriKind.Relative))).GetProperty("name").GetString(), Is.EqualTo("user-3"));
        using HttpResponseMessage put = await client.PutAsJsonAsync(new Uri("/users/3", UriKind.Relative), new { name = "Ada", email = "ada@example.com" });
        Assert.That(put.StatusCode, Is.EqualTo(HttpStatusCode.OK));

        Assert.That((await client.GetFromJsonAsync<JsonElement>(new Uri("/users/3", UriKind.Relative))).GetProperty("name").GetString(), Is.EqualTo("Ada"));
        Assert.That(database.QueryCount, Is.EqualTo(2), "one load before the write, one after");
        Assert.That(database.WriteCount, Is.EqualTo(1));
    }

    [Test]
    public async Task AMissingUser_Is404_AndItsAbsenceIsCached()
    {
        var (app, client, database) = await StartAsync();
        await using var _ = app;
        using var __ = client;
        database.Open();

        for (int i = 0; i < 3; i++)
        {
            using HttpResponseMessage response = await client.GetAsync(new Uri("/users/999999", UriKind.Relative));
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        }

        Assert.That(database.QueryCount, Is.EqualTo(1));
    }

    /// <summary>The sample's database, whose queries wait for <see cref="Open"/> instead of a fixed latency.</summary>
    private sealed class GatedDatabase() : SimulatedUserDatabase(TimeSpan.Zero, TimeProvider.System)
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Open() => _gate.TrySetResult();

        protected override Task WaitAsync(CancellationToken cancellationToken) => _gate.Task.WaitAsync(cancellationToken);
    }
}
