using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (e): no <see cref="TaskScheduler.UnobservedTaskException"/> ever comes from the cache, whatever
/// fails: a loader (synchronously or not, with one caller or many, cancellable or not), L2 (reads, writes, removals,
/// tag stamps), a batch loader, or background work (a load finishing after a timeout, an early refresh). Each scenario
/// runs in its own method with its own cache, whose references are then dropped; the finalizers that raise the event run
/// under forced collections. The event is process-wide, so only exceptions carrying this test's marker count: those the
/// test throws, and those the cache makes about the test's keys (which carry the marker; keys are shown in messages).
/// </summary>
public class NoExceptionIsEverUnobserved
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    /// <summary>An exception that carries the marker of the test that made it.</summary>
    private sealed class MarkedException(string marker) : Exception($"test failure {marker}")
    {
        public string Marker { get; } = marker;
    }

    /// <summary>Keys carry the marker and messages carry keys, so exceptions the cache itself makes (timeouts) are recognised too.</summary>
    private static void KeysInMessages(CoalescingCacheOptions o) => o.IncludeKeysInTelemetry = true;

    private static async Task AssertNoneUnobservedAsync(Func<string, Task> scenario)
    {
        string marker = Guid.NewGuid().ToString("N");
        var unobserved = new ConcurrentQueue<Exception>();
        void OnUnobserved(object? sender, UnobservedTaskExceptionEventArgs e)
        {
            foreach (Exception ex in e.Exception.Flatten().InnerExceptions)
            {
                for (Exception? inner = ex; inner is not null; inner = inner.InnerException)
                {
                    if ((inner is MarkedException marked && marked.Marker == marker) || inner.Message.Contains(marker, StringComparison.Ordinal))
                    {
                        unobserved.Enqueue(ex);
                        break;
                    }
                }
            }
        }

        TaskScheduler.UnobservedTaskException += OnUnobserved;
        try
        {
            await RunAndForgetAsync(scenario, marker);
            for (int round = 0; round < 3; round++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                await Task.Yield();
            }

            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= OnUnobserved;
        }

        Assert.That(unobserved.Select(e => $"{e.GetType().Name}: {e.Message}"), Is.Empty, "Exceptions reached TaskScheduler.UnobservedTaskException.");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Task RunAndForgetAsync(Func<string, Task> scenario, string marker) => scenario(marker);

    private static async Task ExpectAsync<TException>(Func<Task> call)
        where TException : Exception
    {
        try
        {
            await call().WaitAsync(Guard);
        }
        catch (TException)
        {
            return;
        }

        Assert.Fail($"Expected {typeof(TException).Name}.");
    }

    private static async Task<string> FailsAsynchronously(string marker)
    {
        await Task.Yield();
        throw new MarkedException(marker);
    }

    [Test]
    public Task ALoaderFailingAsynchronously_OneCaller() => AssertNoneUnobservedAsync(async marker =>
    {
        using var cache = TestCaches.Create(KeysInMessages);
        await ExpectAsync<MarkedException>(async () => await cache.GetOrLoadAsync($"k-{marker}", _ => FailsAsynchronously(marker)));
    });

    [Test]
    public Task ALoaderFailingAsynchronously_ManyCallers_SomeCancellable() => AssertNoneUnobservedAsync(async marker =>
    {
        using var cache = TestCaches.Create(KeysInMessages);
        using var cts = new CancellationTokenSource();
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = new List<Task<string>>
        {
            cache.GetOrLoadAsync($"k-{marker}", _ => gate.Task).AsTask(),
            cache.GetOrLoadAsync($"k-{marker}", _ => gate.Task, cancellationToken: cts.Token).AsTask(),
            cache.GetOrLoadAsync($"k-{marker}", _ => gate.Task, cancellationToken: cts.Token).AsTask(),
        };
        gate.SetException(new MarkedException(marker));
        foreach (Task<string> call in calls)
        {
            await ExpectAsync<MarkedException>(() => call);
        }
    });

    [Test]
    public Task ALoaderFailingAfterEveryCallerCancelled() => AssertNoneUnobservedAsync(async marker =>
    {
        using var cache = TestCaches.Create(KeysInMessages);
        using var cts = new CancellationTokenSource();
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var call = cache.GetOrLoadAsync($"k-{marker}", _ => gate.Task, cancellationToken: cts.Token).AsTask();
        await cts.CancelAsync();
        await ExpectAsync<OperationCanceledException>(() => call);
        gate.SetException(new MarkedException(marker));
        await TestCaches.Until(() => cache.InFlightCount == 0 && cache.BackgroundCount == 0, "the load ends");
    });

    [Test]
    public Task ALoaderThrowingSynchronously() => AssertNoneUnobservedAsync(async marker =>
    {
        using var cache = TestCaches.Create(KeysInMessages);
        await ExpectAsync<MarkedException>(async () => await cache.GetOrLoadAsync<string>($"k-{marker}", _ => throw new MarkedException(marker)));
    });

    [Test]
    public Task ABatchLoaderFailingAsynchronously() => AssertNoneUnobservedAsync(async marker =>
    {
        using var cache = TestCaches.Create(KeysInMessages);
        await ExpectAsync<MarkedException>(async () => await cache.GetOrLoadManyAsync<string>([$"a-{marker}", $"b-{marker}"], async (_, _) =>
        {
            await Task.Yield();
            throw new MarkedException(marker);
        }));
    });

    [Test]
    public Task AnL2FailingAsynchronously_OnEveryOperation() => AssertNoneUnobservedAsync(async marker =>
    {
        var time = new FakeTimeProvider();
        var l2 = new ControlledDistributedCache(new FakeDistributedCache(time)) { FailWith = () => new MarkedException(marker) };
        using var cache = TestCaches.Create(o => { KeysInMessages(o); o.DistributedCacheCircuitBreakerDuration = TimeSpan.Zero; }, l2: l2, time: time);
        Assert.That(await cache.GetOrLoadAsync($"k-{marker}", _ => Task.FromResult("v")), Is.EqualTo("v"));
        Assert.That(await cache.GetOrLoadAsync($"t-{marker}", _ => Task.FromResult("v"), new CacheEntryOptions { Tags = ["tag"] }), Is.EqualTo("v"));
        await cache.SetAsync($"k-{marker}", "v2");
        await cache.RemoveAsync($"k-{marker}");
        await cache.RemoveByTagAsync("tag");
        Assert.That((await cache.TryGetAsync<string>($"missing-{marker}")).Found, Is.False);
        Assert.That(await cache.GetOrLoadManyAsync<string>([$"x-{marker}", $"y-{marker}"], (keys, _) => Task.FromResult<IReadOnlyDictionary<string, string>>(keys.ToDictionary(k => k, k => k))), Has.Count.EqualTo(2));
        await TestCaches.Until(() => cache.BackgroundCount == 0, "background work ends");
    });

    [Test]
    public Task ABackgroundLoadFailingAfterASoftTimeout() => AssertNoneUnobservedAsync(async marker =>
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { KeysInMessages(o); o.FailSafe = true; o.JitterRatio = 0; o.DefaultExpiration = TimeSpan.FromMinutes(1); o.LoaderSoftTimeout = TimeSpan.FromSeconds(1); }, time: time);
        await cache.GetOrLoadAsync($"k-{marker}", _ => Task.FromResult("v0"));
        time.Advance(TimeSpan.FromMinutes(1));
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        int armed = time.ArmedTimers;
        var call = cache.GetOrLoadAsync($"k-{marker}", _ => gate.Task).AsTask();
        await TestCaches.Until(() => time.ArmedTimers > armed, "the soft timeout is armed");
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.That(await call.WaitAsync(Guard), Is.EqualTo("v0"));
        gate.SetException(new MarkedException(marker));
        await TestCaches.Until(() => cache.BackgroundCount == 0, "the background load ends");
    });

    [Test]
    public Task ABackgroundLoadFailingAfterAHardTimeout() => AssertNoneUnobservedAsync(async marker =>
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { KeysInMessages(o); o.LoaderHardTimeout = TimeSpan.FromSeconds(3); }, time: time);
        var gate = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        int armed = time.ArmedTimers;
        var call = cache.GetOrLoadAsync($"k-{marker}", _ => gate.Task).AsTask();
        await TestCaches.Until(() => time.ArmedTimers > armed, "the hard timeout is armed");
        time.Advance(TimeSpan.FromSeconds(3));
        await Expect.ThrowsAsync<TimeoutException>(call);
        gate.SetException(new MarkedException(marker));
        await TestCaches.Until(() => cache.BackgroundCount == 0, "the background load ends");
    });

    [Test]
    public Task AnEarlyRefreshFailing() => AssertNoneUnobservedAsync(async marker =>
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { KeysInMessages(o); o.JitterRatio = 0; o.DefaultExpiration = TimeSpan.FromSeconds(100); o.EagerRefreshThreshold = 0.5; }, time: time);
        await cache.GetOrLoadAsync($"k-{marker}", _ => Task.FromResult("v0"));
        time.Advance(TimeSpan.FromSeconds(60));
        Assert.That(await cache.GetOrLoadAsync($"k-{marker}", _ => FailsAsynchronously(marker)), Is.EqualTo("v0"));
        await TestCaches.Until(() => cache.BackgroundCount == 0, "the refresh ends");
    });
}
