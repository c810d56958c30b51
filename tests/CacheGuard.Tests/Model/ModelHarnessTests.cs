// The model-based concurrency harness (issue 11, section 3).
//
// Each test runs CsCheck-generated programs (a setup and a list of steps: GetOrLoad, GetOrLoadMany, TryGet, Set,
// Remove, RemoveByTag including "*", loader and L2 releases, L2 faults, clock advances; on one node, or on two nodes
// over one L2 and an in-memory backplane) against real DefaultCoalescingCache instances, records the history of the
// run, and checks one property over it (see ModelProperty). On a failure CsCheck keeps sampling smaller programs and
// reports the smallest that failed, printed one step per line, with that run's history.
//
// Run:      dotnet test tests/CacheGuard.Tests --filter "FullyQualifiedName~Model.ModelHarnessTests"   (all of it: --filter Category=Model)
// Trust:    ModelHarnessSelfTests runs the same harness against a trivially correct reference cache (every property must
//           hold) and against deliberately broken variants of it (they must be caught).
// Longer:   CACHEGUARD_MODEL_ITERATIONS=20000 dotnet test ... (runs per property, default 2,000; the unobserved-exception
//           test runs a quarter of it, as each of its runs forces two full garbage collections).
//           CACHEGUARD_MODEL_SELF_ITERATIONS does the same for ModelHarnessSelfTests (the harness against a reference cache).
// Replay:   a failure prints 'Set seed: "<seed>"'. Run that test alone with
//             CsCheck_Seed=<seed> CACHEGUARD_MODEL_ITERATIONS=1 dotnet test tests/CacheGuard.Tests --filter "Name=<test>"
//           to run the same program again. The program is reproduced exactly; its interleaving may not be (callers run on
//           the thread pool), so a replay runs the program up to CACHEGUARD_MODEL_REPLAYS times (default 50) until it fails.
//           The failure also prints the program reduced further (steps dropped and simplified while it still fails,
//           for up to CACHEGUARD_MODEL_SHRINK_SECONDS, default 15) and that program as C#: paste it into
//           ModelRegressionTests.Replay to keep it as a regression test.
//
// On the core as issue 11 found it, five of the six tests fail. The minimal programs (A = node, cN = caller):
//   NoValueOlderThan...:  A c1 GetOrLoad(k0, gated) · A c2 db write, RemoveByTag("*") · (release) → the audit read sees v0   (a)
//                         k0 hard 3 s: c1 GetOrLoad(gated) · clock +3 s · c2 Set(k0) · (release) → the audit sees v0        (a)
//                         k0 tag b: c1 GetOrLoad(gated) · c2 RemoveByTag(b) · c3 GetOrLoad → c3 joins c1's load, gets v0 (a)
//                         k1 fail-safe, soft 1 s, tag a: Set · RemoveByTag(a) · clock +10 · GetOrLoad(gated) · clock +1
//                           → fail-safe serves the tag-invalidated value                                               (c)
//   OneLoaderPerKey:      k0 hard 3 s: c1 GetOrLoad(gated) · clock +3 s · c2 GetOrLoad → a second loader runs               (b)
//   EveryCallCompletes:   k0 hard 3 s: c1 GetOrLoadMany([k0], gated) · clock +10 · clock +8 → 18 s, no timeout              (i)
//   NoUnobserved...:      c1 GetOrLoad(k0, loader fails asynchronously) → UnobservedTaskException                          (e)
//   StaleOnlyAs...:       k2 fail-safe: Set · clock +17 · GetOrLoad(gated) · clock +3 · loader fails · clock +1
//                           → the value is served 21 s after it was stored (lifetime 10 s + FailSafeMaxDuration 10 s)  (c)
//   OnlyAllowedErrors holds. More (two nodes, L2 faults, replay) in the report of ModelSurveyTests.Survey.
using System.Diagnostics;
using System.Globalization;
using CsCheck;

namespace CacheGuard.Tests.Model;

/// <summary>
/// Random interleavings of every public operation against a sequential model of versions. Each test checks one
/// property, so each shrinks to its own minimal program. These tests fail on the core as it was when issue 11 was filed;
/// the core rewrite must make them pass.
/// </summary>
[Category("Model")]
[NonParallelizable]
public class ModelHarnessTests
{
    private const int DefaultIterations = 2000;
    private const int DefaultReplays = 50;
    private const int DefaultShrinkSeconds = 15;

    [Test]
    public void NoCallerSeesAValueOlderThanAWriteThatCompletedBeforeItsCall() => Check(ModelProperty.NoValueOlderThanACompletedWrite);

    [Test]
    public void ExpiredValuesAreServedOnlyAsFailSafeAllows() => Check(ModelProperty.StaleOnlyAsFailSafeAllows);

    [Test]
    public void AtMostOneLoaderRunsPerKey() => Check(ModelProperty.OneLoaderPerKey);

    [Test]
    public void EveryCallCompletes() => Check(ModelProperty.EveryCallCompletes);

    [Test]
    public void NothingRaisesUnobservedTaskExceptions() => Check(ModelProperty.NoUnobservedTaskExceptions);

    [Test]
    public void CallersSeeOnlyTheLoadersErrorOrTheirHardTimeout() => Check(ModelProperty.OnlyAllowedErrors);

    /// <summary>Runs programs until the budget is spent; a violation fails the test with the smallest failing program.</summary>
    internal static void Check(ModelProperty property, long? iterations = null, ModelNodeFactory? nodes = null)
    {
        string? seed = Environment.GetEnvironmentVariable("CsCheck_Seed") is { Length: > 0 } given ? given : null;
        int attempts = seed is null ? 1 : Setting("CACHEGUARD_MODEL_REPLAYS", DefaultReplays);
        bool unobserved = property == ModelProperty.NoUnobservedTaskExceptions;
        long budget = iterations ?? Setting("CACHEGUARD_MODEL_ITERATIONS", DefaultIterations) / (unobserved ? 4 : 1); // two full GCs per run
        if (unobserved)
        {
            _ = UnobservedExceptions.Collect(); // whatever earlier tests left behind is not this test's
        }

        long runs = 0;
        (ModelProgram Program, ModelViolationException Failure)? smallest = null;
        var clock = Stopwatch.StartNew();
        try
        {
            ModelGenerators.Program.Sample(
                program =>
                {
                    for (int attempt = 0; attempt < attempts; attempt++)
                    {
                        Interlocked.Increment(ref runs);
                        using var runner = new ModelRunner(program, nodes);
                        ModelWorld world = runner.Run(unobserved);
                        List<string> violations = ModelChecks.Check(world, property);
                        if (violations.Count > 0)
                        {
                            var failure = new ModelViolationException(property, violations, ModelReport.History(world));
                            smallest = (program, failure); // one thread: each failure CsCheck keeps is smaller than the last
                            throw failure;
                        }
                    }
                },
                writeLine: null,
                seed: seed,
                iter: budget,
                threads: 1, // one run at a time: the runner waits for a quiet thread pool, and unobserved exceptions must belong to their run
                print: program => program.Print());
        }
        catch (CsCheckException failure) when (smallest is { } found)
        {
            TimeSpan searching = clock.Elapsed;
            (ModelProgram reduced, ModelViolationException reducedFailure) = ModelShrinker.Reduce(
                found.Program, found.Failure, property, TimeSpan.FromSeconds(Setting("CACHEGUARD_MODEL_SHRINK_SECONDS", DefaultShrinkSeconds)), nodes);
            Assert.Fail(
                $"{property}: a generated program broke the property ({runs:N0} runs, {searching.TotalSeconds:0.0} s; reduced in {(clock.Elapsed - searching).TotalSeconds:0.0} s).{Environment.NewLine}" +
                $"CsCheck's smallest failing program: {failure.Message}{Environment.NewLine}{Environment.NewLine}" +
                $"Reduced further, by dropping and simplifying steps while it still fails, to:{Environment.NewLine}{reduced.Print()}{Environment.NewLine}" +
                $"{reducedFailure.Message}{Environment.NewLine}" +
                $"The reduced program as C# (replay it with ModelRegressionTests.Replay):{Environment.NewLine}{reduced.ToCode()}{Environment.NewLine}");
        }

        TestContext.Out.WriteLine($"{property}: {runs:N0} runs in {clock.Elapsed.TotalSeconds:0.0} s, no violation.");
    }

    internal static int Setting(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value > 0 ? value : fallback;
}
