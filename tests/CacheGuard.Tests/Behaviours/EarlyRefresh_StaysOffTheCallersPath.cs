using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Behaviours;

/// <summary>
/// Issue 11, behaviour (k): early refresh (eager threshold or probabilistic) is background work a hit starts, never work
/// the hitting caller does. A caller that asked for no loader call (<see cref="CacheEntryFlags.DisableUnderlyingData"/>)
/// starts none; and the loader's synchronous part runs off the hitting caller's thread, so a loader that blocks before
/// its first await does not block the hit.
/// </summary>
public class EarlyRefresh_StaysOffTheCallersPath
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(100);

    /// <summary>A cache with "k" = "v0" whose next hit would start an early refresh.</summary>
    private static async Task<(Internal.DefaultCoalescingCache Cache, FakeTimeProvider Time)> DueForRefreshAsync(bool probabilistic)
    {
        var time = new FakeTimeProvider();
        var cache = TestCaches.Create(
            o =>
            {
                o.DefaultExpiration = Lifetime;
                o.JitterRatio = 0;
                o.EagerRefreshThreshold = probabilistic ? null : 0.5;
                o.ProbabilisticEarlyRefresh = probabilistic;
            },
            time: time,
            random: () => 0.999); // XFetch: ln(0.001) makes a refresh certain well before expiry

        // The first load takes 10 s, so XFetch has a load duration to weigh.
        var first = new TestCaches.GatedLoader<string>();
        var loading = cache.GetOrLoadAsync("k", first.Load).AsTask();
        await TestCaches.Until(() => first.Calls == 1, "the first load starts");
        time.Advance(TimeSpan.FromSeconds(10));
        first.Gate.SetResult("v0");
        Assert.That(await loading.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo("v0"));

        time.Advance(TimeSpan.FromSeconds(60)); // past the eager threshold; within XFetch's reach
        return (cache, time);
    }

    [TestCase(false, TestName = "AHitWithDisableUnderlyingData_StartsNoEarlyRefresh(eager)")]
    [TestCase(true, TestName = "AHitWithDisableUnderlyingData_StartsNoEarlyRefresh(probabilistic)")]
    public async Task AHitWithDisableUnderlyingData_StartsNoEarlyRefresh(bool probabilistic)
    {
        var (cache, _) = await DueForRefreshAsync(probabilistic);
        using (cache)
        {
            int calls = 0;
            var noLoads = new CacheEntryOptions { Flags = CacheEntryFlags.DisableUnderlyingData };

            Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult($"refreshed {Interlocked.Increment(ref calls)}"), noLoads), Is.EqualTo("v0"));
            await TestCaches.Until(() => cache.BackgroundCount == 0, "background work ends");

            Assert.That(calls, Is.Zero, "A hit that asked for no loader call started an early refresh that called it.");
        }
    }

    [TestCase(false, TestName = "ALoaderThatBlocksBeforeItsFirstAwait_DoesNotBlockTheHitThatStartsItsRefresh(eager)")]
    [TestCase(true, TestName = "ALoaderThatBlocksBeforeItsFirstAwait_DoesNotBlockTheHitThatStartsItsRefresh(probabilistic)")]
    public async Task ALoaderThatBlocksBeforeItsFirstAwait_DoesNotBlockTheHitThatStartsItsRefresh(bool probabilistic)
    {
        var (cache, _) = await DueForRefreshAsync(probabilistic);
        using (cache)
        using (var gate = new ManualResetEventSlim(false))
        {
            int opened = -1; // -1: the loader has not run; 1: it found the gate open; 0: it gave up waiting
            Task<string> BlockingLoader(CancellationToken _)
            {
                // The synchronous part: blocks until the test has seen the hit return (or gives up after 10 s).
                Volatile.Write(ref opened, gate.Wait(TimeSpan.FromSeconds(10), CancellationToken.None) ? 1 : 0);
                return Task.FromResult("v1");
            }

            var hit = Task.Run(() => cache.GetOrLoadAsync("k", BlockingLoader).AsTask());
            await TestCaches.Until(() => hit.IsCompleted, "the hit returns");
            gate.Set();
            Assert.That(await hit, Is.EqualTo("v0"), "The hit gets the current value.");

            await TestCaches.Until(() => Volatile.Read(ref opened) >= 0 && cache.BackgroundCount == 0, "the refresh runs and ends");
            Assert.That(Volatile.Read(ref opened), Is.EqualTo(1), "The refresh's loader ran its synchronous part on the hitting caller's thread: the hit waited for it.");
            Assert.That(await cache.GetOrLoadAsync("k", _ => Task.FromResult("unused")), Is.EqualTo("v1"), "The refresh still happened.");
        }
    }
}
