using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

/// <summary>
/// Callers that join a load without a cancellable token wait on the flight itself (a <see cref="ValueTask{TResult}"/>
/// over it, its continuations parked in pooled storage) instead of a shared task: they must see exactly what a task's
/// awaiters would — resumed off the completing thread, on their captured context, in their execution context, and a
/// blocking read that waits.
/// </summary>
public class TokenlessWaitTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);

    [Test]
    public async Task AJoiner_ResumesOffTheThreadThatCompletesTheLoad()
    {
        using var cache = TestCaches.Create();
        var source = new TaskCompletionSource<int>(); // continuations inline: the load completes on the thread that sets it
        ValueTask<int> leader = cache.GetOrLoadAsync("k", _ => source.Task);
        using var release = new ManualResetEventSlim();
        int resumedOn = 0;
        Task<int> joiner = JoinAsync();
        Assert.That(cache.WaitersFor("k"), Is.EqualTo(2));

        source.SetResult(5); // a joiner resumed inline would block here until the guard ran out
        int completedOn = Environment.CurrentManagedThreadId;
        release.Set();

        Assert.That(await joiner.WaitAsync(Guard), Is.EqualTo(5));
        Assert.That(await leader, Is.EqualTo(5));
        Assert.That(resumedOn, Is.Not.EqualTo(completedOn), "The joiner's continuation ran on the completing thread.");

        async Task<int> JoinAsync()
        {
            int value = await cache.GetOrLoadAsync<int>("k", _ => throw new InvalidOperationException("joined: never runs"));
            resumedOn = Environment.CurrentManagedThreadId;
            release.Wait(Guard);
            return value;
        }
    }

    [Test]
    public async Task AJoiner_ResumesOnItsSynchronizationContext_UnlessItConfiguredAwaitFalse()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<int>();
        ValueTask<int> leader = cache.GetOrLoadAsync("k", loader.Load);
        var context = new CountingContext();

        SynchronizationContext? previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(context);
        Task<bool> onContext, offContext;
        try
        {
            onContext = JoinAsync(continueOnContext: true);
            offContext = JoinAsync(continueOnContext: false);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }

        Assert.That(cache.WaitersFor("k"), Is.EqualTo(3));
        loader.Gate.SetResult(1);

        Assert.That(await onContext.WaitAsync(Guard), Is.True, "resumed on its context");
        Assert.That(await offContext.WaitAsync(Guard), Is.False, "resumed off the context");
        Assert.That(context.Posts, Is.EqualTo(1));
        Assert.That(await leader, Is.EqualTo(1));

        async Task<bool> JoinAsync(bool continueOnContext)
        {
            _ = await cache.GetOrLoadAsync<int>("k", _ => throw new InvalidOperationException("joined: never runs")).ConfigureAwait(continueOnContext);
            return SynchronizationContext.Current == context;
        }
    }

    [Test]
    public async Task AnAwaiterThatFlowsItsExecutionContext_SeesItsAsyncLocals()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<int>();
        ValueTask<int> leader = cache.GetOrLoadAsync("k", loader.Load); // the load runs in a context without the local
        var local = new AsyncLocal<string?>();
        var seen = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);

        local.Value = "caller";
        ValueTask<int> joined = cache.GetOrLoadAsync<int>("k", _ => throw new InvalidOperationException("joined: never runs"));
        Assert.That(joined.IsCompleted, Is.False);
        joined.GetAwaiter().OnCompleted(() => seen.SetResult(local.Value)); // OnCompleted (not Unsafe) flows the context
        local.Value = null;

        loader.Gate.SetResult(3);
        Assert.That(await seen.Task.WaitAsync(Guard), Is.EqualTo("caller"));
        Assert.That(await leader, Is.EqualTo(3));
    }

    [Test]
    public async Task ABlockingReadOfAJoinedCall_WaitsForTheValue()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<int>();
        ValueTask<int> leader = cache.GetOrLoadAsync("k", loader.Load);
        ValueTask<int> joined = cache.GetOrLoadAsync<int>("k", _ => throw new InvalidOperationException("joined: never runs"));
        Assert.That(joined.IsCompleted, Is.False);

        int result = 0;
        var blocked = new Thread(() => result = joined.GetAwaiter().GetResult()); // sync over async, as some callers do
        blocked.Start();
        await TestCaches.Until(() => (blocked.ThreadState & ThreadState.WaitSleepJoin) != 0, "the reader blocks");
        loader.Gate.SetResult(9);

        Assert.That(blocked.Join(Guard), Is.True);
        Assert.That(result, Is.EqualTo(9));
        Assert.That(await leader, Is.EqualTo(9));
    }

    [Test]
    public async Task AFailedLoad_ReachesEveryJoiner_WithItsOwnType()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<int>();
        ValueTask<int> leader = cache.GetOrLoadAsync("k", loader.Load);
        Task[] joiners = Enumerable.Range(0, 100).Select(_ => ExpectFailureAsync()).ToArray();
        Assert.That(cache.WaitersFor("k"), Is.EqualTo(101));

        loader.Gate.SetException(new InvalidDataException("source broke"));

        await Task.WhenAll(joiners).WaitAsync(Guard);
        Assert.That(async () => await leader, Throws.TypeOf<InvalidDataException>());

        async Task ExpectFailureAsync()
        {
            InvalidDataException? caught = null;
            try
            {
                _ = await cache.GetOrLoadAsync<int>("k", _ => throw new InvalidOperationException("joined: never runs"));
            }
            catch (InvalidDataException e)
            {
                caught = e;
            }

            Assert.That(caught?.Message, Is.EqualTo("source broke"));
        }
    }

    [Test]
    public async Task JoinersOfSuccessiveLoads_EachGetTheirOwnLoadsValue()
    {
        // The parked storage goes back to the pool after each load: a later stampede must neither resume an earlier
        // load's callers again nor hand its callers an earlier value.
        using var cache = TestCaches.Create();
        for (int round = 0; round < 20; round++)
        {
            var loader = new TestCaches.GatedLoader<int>();
            string key = $"k{round}";
            ValueTask<int> leader = cache.GetOrLoadAsync(key, loader.Load);
            int joined = 1 + (round * 37 % 300);
            Task<int>[] calls = Enumerable.Range(0, joined).Select(_ => cache.GetOrLoadAsync(key, loader.Load).AsTask()).ToArray();
            Assert.That(cache.WaitersFor(key), Is.EqualTo(joined + 1));

            loader.Gate.SetResult(round);

            Assert.That(await Task.WhenAll(calls).WaitAsync(Guard), Has.All.EqualTo(round));
            Assert.That(await leader, Is.EqualTo(round));
            Assert.That(loader.Calls, Is.EqualTo(1));
        }
    }

    private sealed class CountingContext : SynchronizationContext
    {
        private int _posts;

        public int Posts => Volatile.Read(ref _posts);

        public override void Post(SendOrPostCallback d, object? state)
        {
            Interlocked.Increment(ref _posts);
            ThreadPool.QueueUserWorkItem(_ =>
            {
                SetSynchronizationContext(this);
                d(state);
            });
        }
    }
}
