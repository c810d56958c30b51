using CacheGuard.Tests.Support;

namespace CacheGuard.Tests.Model;

/// <summary>
/// Regression tests for the most important minimal programs the model harness found on the core of issue 11, written
/// as ordinary deterministic tests: a gated loader, the fake clock, one assertion on what a later caller sees. Each
/// names the harness property it breaks and the behaviour.
/// </summary>
[Category("Model")]
public class ModelRegressionTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Found by NoValueOlderThanACompletedWrite, issue 11 (a). Minimal program: one plain key, L1 only;
    /// c1 GetOrLoad(gated) · c2 db write, RemoveByTag("*") · release c1's loader · read again.
    /// </summary>
    [Test]
    public async Task AStarInvalidationDuringALoad_KeepsTheValueLoadedBeforeItOutOfTheCache()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => o.JitterRatio = 0, time: time);
        var loader = new TestCaches.GatedLoader<long>();
        Task<long> first = cache.GetOrLoadAsync("k", loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1, "the load has read version 1 of the row");

        // The row changes to version 2, and the application invalidates everything.
        await cache.RemoveByTagAsync("*");
        loader.Gate.SetResult(1);
        Assert.That(await first.WaitAsync(Guard), Is.EqualTo(1), "The load's own caller may get what it read.");

        long after = await cache.GetOrLoadAsync("k", _ => Task.FromResult(2L)).AsTask().WaitAsync(Guard);
        Assert.That(after, Is.EqualTo(2), "A call made after RemoveByTag(\"*\") returned got the value loaded before it.");
    }

    /// <summary>
    /// Found by NoValueOlderThanACompletedWrite, issue 11 (a) and (b). Minimal program: one key with a 3 s hard timeout,
    /// background completion on, L1 only; c1 GetOrLoad(gated) · clock +3 s (c1 times out) · c2 db write, Set · release
    /// c1's loader (it finishes in the background) · read again.
    /// </summary>
    [Test]
    public async Task ALoadFinishingInTheBackgroundAfterItsHardTimeout_DoesNotOverwriteALaterSet()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.JitterRatio = 0; o.LoaderHardTimeout = TimeSpan.FromSeconds(3); }, time: time);
        var loader = new TestCaches.GatedLoader<long>();
        Task<long> first = cache.GetOrLoadAsync("k", loader.Load).AsTask();
        await TestCaches.Until(() => loader.Calls == 1 && time.ArmedTimers > 0, "the load runs under its hard timeout");
        time.Advance(TimeSpan.FromSeconds(3));
        await Expect.ThrowsAsync<TimeoutException>(first); // awaits the call itself, so its exception is observed

        await cache.SetAsync("k", 2L); // the row changed to version 2 and the application wrote it through
        loader.Gate.SetResult(1); // the timed-out load read version 1 before the write
        await TestCaches.Until(() => cache.BackgroundCount == 0, "the timed-out load finishes in the background");

        long after = await cache.GetOrLoadAsync("k", _ => Task.FromResult(3L)).AsTask().WaitAsync(Guard);
        Assert.That(after, Is.EqualTo(2), "The timed-out load, finishing after SetAsync returned, overwrote the newer value.");
    }

    /// <summary>
    /// Found by OneLoaderPerKey, issue 11 (b). Minimal program: one key with a 3 s hard timeout, background completion
    /// on; c1 GetOrLoad(gated) · clock +3 s (c1 times out, its load goes on) · c2 GetOrLoad.
    /// </summary>
    [Test]
    public async Task AfterAHardTimeout_TheNextCallerDoesNotStartASecondLoadOfTheSameKey()
    {
        var time = new FakeTimeProvider();
        using var cache = TestCaches.Create(o => { o.JitterRatio = 0; o.LoaderHardTimeout = TimeSpan.FromSeconds(3); }, time: time);
        var slow = new TestCaches.GatedLoader<long>();
        Task<long> first = cache.GetOrLoadAsync("k", slow.Load).AsTask();
        await TestCaches.Until(() => slow.Calls == 1 && time.ArmedTimers > 0, "the load runs under its hard timeout");
        time.Advance(TimeSpan.FromSeconds(3));
        await Expect.ThrowsAsync<TimeoutException>(first); // awaits the call itself, so its exception is observed

        int secondLoads = 0;
        Task<long> second = cache.GetOrLoadAsync("k", _ =>
        {
            Interlocked.Increment(ref secondLoads);
            return Task.FromResult(2L);
        }).AsTask();

        // The first load is still running: the second caller may join it, get a stale value or a timeout, not load again.
        Assert.That(Volatile.Read(ref secondLoads), Is.Zero, "A second loader started while the timed-out one still ran.");

        slow.Gate.SetResult(1);
        await TestCaches.Until(() => second.IsCompleted && cache.BackgroundCount == 0, "both calls finish");
        Assert.That(await second, Is.EqualTo(1L), "A caller that joined the running load gets its value (its own hard timeout had not passed).");
    }

    /// <summary>Replays a program the harness printed (its C# form) and asserts the property holds on every attempt.</summary>
    internal static void Replay(ModelProgram program, ModelProperty property, int attempts = 20)
    {
        if (ModelShrinker.Fails(program, property, attempts) is { } failure)
        {
            Assert.Fail($"{program.Print()}{Environment.NewLine}{failure.Message}");
        }
    }

    /// <summary>The minimal programs the harness found on the core of issue 11, one per property it broke, replayed as they were printed.</summary>
    private static readonly Dictionary<string, (ModelProgram Program, ModelProperty Property)> Found = FoundPrograms();

    private static IEnumerable<string> FoundNames => Found.Keys;

    [TestCaseSource(nameof(FoundNames))]
    public void FoundProgram_NoLongerBreaksItsProperty(string name) => Replay(Found[name].Program, Found[name].Property);

    private static Dictionary<string, (ModelProgram, ModelProperty)> FoundPrograms()
    {
        KeyPolicy plain = new(false, false, false, 0, false);
        KeyPolicy hard = new(false, false, true, 0, false);
        KeyPolicy failSafe = new(true, false, false, 0, false);
        static ModelConfig L1Only(params KeyPolicy[] keys) => new(keys, HasL2: false, SecondNode: false, BackgroundCompletion: true, ShortLocalLifetime: false);
        return new()
        {
            ["StarInvalidationDuringALoad"] = (
                new ModelProgram(L1Only(plain), [new GetStep(0, 0, LoaderMode.Gated, false), new InvalidateStep(0, InvalidationTag.All, false)]),
                ModelProperty.NoValueOlderThanACompletedWrite),
            ["SecondLoaderAfterAHardTimeout"] = (
                new ModelProgram(L1Only(hard), [new GetStep(0, 0, LoaderMode.Gated, false), new AdvanceStep(3), new GetStep(0, 0, LoaderMode.Immediate, false)]),
                ModelProperty.OneLoaderPerKey),
            ["BatchIgnoresTheHardTimeout"] = (
                new ModelProgram(L1Only(plain, hard), [new GetManyStep(0, 2, LoaderMode.Gated, false), new AdvanceStep(8), new AdvanceStep(10)]),
                ModelProperty.EveryCallCompletes),
            ["AsynchronousLoaderFailure"] = (
                new ModelProgram(L1Only(plain), [new GetStep(0, 0, LoaderMode.ThrowsAsync, false)]),
                ModelProperty.NoUnobservedTaskExceptions),
            ["FailSafeRearmedPastItsMaximum"] = (
                new ModelProgram(L1Only(plain, plain, failSafe), [
                    new WriteStep(0, 2, WriteKind.Set, false), new AdvanceStep(4), new AdvanceStep(9), new AdvanceStep(4),
                    new GetStep(0, 2, LoaderMode.Gated, false), new AdvanceStep(3), new ReleaseLoaderStep(0, true, false), new AdvanceStep(1),
                ]),
                ModelProperty.StaleOnlyAsFailSafeAllows),

            // Found by EveryCallCompletes on the rewritten core (20,000-run sweep): a batch's flight was replaced before its
            // loader started, the flight it started instead was replaced too, and the batch followed the chain one link
            // at a time, waiting for the middle flight before the step that completes it: the batch's caller never returned.
            ["BatchFollowingAChainOfReplacedFlights"] = (
                new ModelProgram(
                    new ModelConfig([new KeyPolicy(false, false, false, 1, false), new KeyPolicy(true, false, false, 2, false)], HasL2: true, SecondNode: false, BackgroundCompletion: true, ShortLocalLifetime: false),
                    [
                        new L2ModeStep(L2Mode.Slow, true),
                        new GetStep(0, 0, LoaderMode.Gated, false),
                        new InvalidateStep(0, InvalidationTag.B, false),
                        new TryGetStep(1, 2, false),
                        new WriteStep(0, 2, WriteKind.Remove, false),
                        new GetManyStep(1, 15, LoaderMode.Gated, false),
                        new TryGetStep(0, 0, false),
                        new L2ModeStep(L2Mode.Slow, false),
                        new GetStep(1, 3, LoaderMode.Gated, true),
                        new WriteStep(1, 0, WriteKind.Remove, true),
                        new AdvanceStep(4),
                        new WriteStep(1, 0, WriteKind.Set, true),
                        new GetStep(0, 3, LoaderMode.Gated, true),
                        new AdvanceStep(7),
                        new GetManyStep(0, 4, LoaderMode.Throws, false),
                    ]),
                ModelProperty.EveryCallCompletes),
        };
    }
}
