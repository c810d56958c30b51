using CsCheck;

namespace CacheGuard.Tests.Model;

/// <summary>
/// CsCheck generators for programs. Every choice shrinks towards the simplest case (low numbers, the first enum value,
/// false): no L2, one node, plain keys, immediate loaders, no races, fewer steps.
/// </summary>
internal static class ModelGenerators
{
    private static readonly Gen<bool> Race = Gen.Int[0, 3].Select(i => i == 3);

    private static readonly Gen<LoaderMode> Loader = Gen.Frequency(
        (3, LoaderMode.Immediate),
        (3, LoaderMode.Async),
        (6, LoaderMode.Gated),
        (1, LoaderMode.Throws),
        (2, LoaderMode.ThrowsAsync));

    private static readonly Gen<L2Mode> Modes = Gen.Frequency(
        (4, L2Mode.Normal),
        (5, L2Mode.Slow),
        (2, L2Mode.FailSync),
        (2, L2Mode.FailAsync),
        (1, L2Mode.Hang),
        (2, L2Mode.Garbage),
        (1, L2Mode.Truncated));

    private static readonly Gen<KeyPolicy> Policy = Gen.Select(
        Gen.Bool,
        Gen.Bool,
        Gen.Bool,
        Gen.Int[0, 2],
        Gen.Int[0, 3],
        (failSafe, soft, hard, tag, eager) => new KeyPolicy(failSafe, soft, hard, tag, eager == 3));

    private static readonly Gen<ModelConfig> Config = Gen.Select(
        Policy.Array[2, 4],
        Gen.Int[0, 5],
        Gen.Bool,
        Gen.Bool,
        Gen.Int[0, 3],
        (keys, l2, second, background, local) => new ModelConfig(keys, HasL2: l2 != 0, second, background, ShortLocalLifetime: local == 3));

    private static readonly Gen<int> Node = Gen.Int[0, 1];

    private static readonly Gen<int> Key = Gen.Int[0, 3];

    private static readonly Gen<Step> Steps = Gen.Frequency(
        (30, Gen.Select(Node, Key, Loader, Race, (n, k, l, r) => (Step)new GetStep(n, k, l, r))),
        (10, Gen.Select(Node, Key, Gen.Int[0, 3], Race, (n, k, kind, r) => (Step)new WriteStep(n, k, kind == 3 ? WriteKind.Remove : WriteKind.Set, r))),
        (16, Gen.Int[1, ModelTimings.MaxAdvanceSeconds].Select(s => (Step)new AdvanceStep(s))),
        (14, Gen.Select(Gen.Int[0, 3], Gen.Int[0, 3], Race, (p, f, r) => (Step)new ReleaseLoaderStep(p, f == 3, r))),
        (6, Gen.Select(Gen.Int[0, 3], Race, (p, r) => (Step)new ReleaseL2Step(p, r))),
        (5, Gen.Select(Modes, Race, (m, r) => (Step)new L2ModeStep(m, r))),
        (8, Gen.Select(Node, Key, Race, (n, k, r) => (Step)new TryGetStep(n, k, r))),
        (5, Gen.Select(Node, Gen.Int[1, 15], Loader, Race, (n, m, l, r) => (Step)new GetManyStep(n, m, l, r))),
        (5, Gen.Select(Node, Gen.Enum<InvalidationTag>(), Race, (n, t, r) => (Step)new InvalidateStep(n, t, r))));

    /// <summary>A program: a setup and 1 to 30 steps over 2 to 4 keys.</summary>
    public static readonly Gen<ModelProgram> Program = Gen.Select(Config, Steps.Array[1, 30], (config, steps) => new ModelProgram(config, steps));
}
