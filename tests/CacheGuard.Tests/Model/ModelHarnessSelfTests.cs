namespace CacheGuard.Tests.Model;

/// <summary>
/// Checks the harness itself. Against a cache that is correct by being trivial (<see cref="ModelReferenceCache"/>:
/// it never caches, it only coalesces) every property holds, so the model asks nothing impossible; against that cache
/// with a deliberate bug, a program that exercises the bug is caught, so the checks can fail.
/// </summary>
[Category("Model")]
[NonParallelizable]
public class ModelHarnessSelfTests
{
    [TestCase(nameof(ModelProperty.NoValueOlderThanACompletedWrite))]
    [TestCase(nameof(ModelProperty.StaleOnlyAsFailSafeAllows))]
    [TestCase(nameof(ModelProperty.OneLoaderPerKey))]
    [TestCase(nameof(ModelProperty.EveryCallCompletes))]
    [TestCase(nameof(ModelProperty.NoUnobservedTaskExceptions))]
    [TestCase(nameof(ModelProperty.OnlyAllowedErrors))]
    public void ACacheThatNeverCachesButCoalescesCorrectly_KeepsEveryProperty(string property) =>
        ModelHarnessTests.Check(Enum.Parse<ModelProperty>(property), ModelHarnessTests.Setting("CACHEGUARD_MODEL_SELF_ITERATIONS", 300), ModelReferenceCache.Nodes());

    [Test]
    public void AWriteThatLeavesAnOlderLoadJoinable_IsCaught()
    {
        KeyPolicy plain = new(false, false, false, 0, false);
        var program = new ModelProgram(
            new ModelConfig([plain], HasL2: false, SecondNode: false, BackgroundCompletion: true, ShortLocalLifetime: false),
            [new GetStep(0, 0, LoaderMode.Gated, false), new WriteStep(0, 0, WriteKind.Set, false), new GetStep(0, 0, LoaderMode.Immediate, false)]);

        Assert.That(ModelShrinker.Fails(program, ModelProperty.NoValueOlderThanACompletedWrite, attempts: 1, ModelReferenceCache.Nodes()), Is.Null, "The correct reference passes.");
        ModelViolationException? caught = ModelShrinker.Fails(program, ModelProperty.NoValueOlderThanACompletedWrite, attempts: 1, ModelReferenceCache.Nodes(ModelReferenceCache.Flaw.WritesDoNotForgetLoads));
        Assert.That(caught?.Violations, Has.Some.Contains("c3 on A: Get(k0)").And.Some.Contains("c2 on A: Set(k0)"));
    }

    [Test]
    public void ALoadThatIgnoresItsHardTimeout_IsCaught()
    {
        KeyPolicy hard = new(false, false, true, 0, false);
        var program = new ModelProgram(
            new ModelConfig([hard], HasL2: false, SecondNode: false, BackgroundCompletion: true, ShortLocalLifetime: false),
            [new GetStep(0, 0, LoaderMode.Gated, false), new AdvanceStep(10), new AdvanceStep(10)]);

        Assert.That(ModelShrinker.Fails(program, ModelProperty.EveryCallCompletes, attempts: 1, ModelReferenceCache.Nodes()), Is.Null, "The correct reference passes.");
        ModelViolationException? caught = ModelShrinker.Fails(program, ModelProperty.EveryCallCompletes, attempts: 1, ModelReferenceCache.Nodes(ModelReferenceCache.Flaw.IgnoresHardTimeouts));
        Assert.That(caught?.Violations, Has.Some.Contains("c1 on A: Get(k0) [step 1] took 20 s"));
    }
}
