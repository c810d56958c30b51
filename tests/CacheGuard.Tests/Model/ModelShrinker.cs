using System.Diagnostics;

namespace CacheGuard.Tests.Model;

/// <summary>
/// Reduces CsCheck's smallest failing program further, by local steps CsCheck's random search rarely hits: drop a run
/// of steps, simplify one step, simplify the setup. A candidate counts as failing when any of a few runs violates the
/// same property (interleavings vary). Bounded in time; the result is always a program that was seen to fail.
/// </summary>
internal static class ModelShrinker
{
    private const int Attempts = 8;

    public static (ModelProgram Program, ModelViolationException Failure) Reduce(ModelProgram program, ModelViolationException failure, ModelProperty property, TimeSpan budget, ModelNodeFactory? nodes = null)
    {
        var clock = Stopwatch.StartNew();
        bool progress = true;
        while (progress && clock.Elapsed < budget)
        {
            progress = false;
            foreach (ModelProgram candidate in Candidates(program))
            {
                if (clock.Elapsed >= budget)
                {
                    break;
                }

                if (Fails(candidate, property, Attempts, nodes) is { } smaller)
                {
                    (program, failure, progress) = (candidate, smaller, true);
                    break;
                }
            }
        }

        return (program, failure);
    }

    /// <summary>Runs a program a few times; returns the first violation of the property, or null.</summary>
    public static ModelViolationException? Fails(ModelProgram program, ModelProperty property, int attempts = Attempts, ModelNodeFactory? nodes = null)
    {
        for (int i = 0; i < attempts; i++)
        {
            using var runner = new ModelRunner(program, nodes);
            ModelWorld world = runner.Run(property == ModelProperty.NoUnobservedTaskExceptions);
            List<string> violations = ModelChecks.Check(world, property);
            if (violations.Count > 0)
            {
                return new ModelViolationException(property, violations, ModelReport.History(world));
            }
        }

        return null;
    }

    private static IEnumerable<ModelProgram> Candidates(ModelProgram program)
    {
        Step[] steps = program.Steps;

        // Fewer steps: halves first, then smaller runs, down to single steps (last first: later steps depend on earlier ones).
        for (int size = Math.Max(1, steps.Length / 2); size >= 1; size /= 2)
        {
            for (int start = steps.Length - size; start >= 0; start--)
            {
                if (steps.Length - size >= 1)
                {
                    yield return program with { Steps = [.. steps[..start], .. steps[(start + size)..]] };
                }
            }

            if (size == 1)
            {
                break;
            }
        }

        // Simpler steps.
        for (int i = 0; i < steps.Length; i++)
        {
            foreach (Step simpler in Simpler(steps[i]))
            {
                Step[] changed = [.. steps];
                changed[i] = simpler;
                yield return program with { Steps = changed };
            }
        }

        // A simpler setup.
        foreach (ModelConfig config in Simpler(program.Config))
        {
            yield return program with { Config = config };
        }
    }

    private static IEnumerable<Step> Simpler(Step step)
    {
        if (step.Race && step is not AdvanceStep)
        {
            yield return step with { Race = false };
        }

        switch (step)
        {
            case GetStep get:
                foreach (LoaderMode mode in Enum.GetValues<LoaderMode>().Where(m => m < get.Loader))
                {
                    yield return get with { Loader = mode };
                }

                if (get.Node > 0)
                {
                    yield return get with { Node = 0 };
                }

                if (get.Key > 0)
                {
                    yield return get with { Key = 0 };
                }

                break;
            case GetManyStep many:
                foreach (LoaderMode mode in Enum.GetValues<LoaderMode>().Where(m => m < many.Loader))
                {
                    yield return many with { Loader = mode };
                }

                for (int bit = 0; bit < 4; bit++)
                {
                    if ((many.KeyMask & (1 << bit)) != 0 && (many.KeyMask & ~(1 << bit)) != 0)
                    {
                        yield return many with { KeyMask = many.KeyMask & ~(1 << bit) };
                    }
                }

                if (many.Node > 0)
                {
                    yield return many with { Node = 0 };
                }

                break;
            case TryGetStep tryGet when tryGet.Node > 0 || tryGet.Key > 0:
                yield return tryGet with { Node = 0 };
                yield return tryGet with { Key = 0 };
                break;
            case WriteStep write:
                if (write.Node > 0)
                {
                    yield return write with { Node = 0 };
                }

                if (write.Key > 0)
                {
                    yield return write with { Key = 0 };
                }

                break;
            case InvalidateStep invalidate when invalidate.Node > 0:
                yield return invalidate with { Node = 0 };
                break;
            case ReleaseLoaderStep release:
                if (release.Fail)
                {
                    yield return release with { Fail = false };
                }

                if (release.Pick > 0)
                {
                    yield return release with { Pick = 0 };
                }

                break;
            case ReleaseL2Step releaseL2 when releaseL2.Pick > 0:
                yield return releaseL2 with { Pick = 0 };
                break;
            case L2ModeStep mode:
                foreach (L2Mode simpler in Enum.GetValues<L2Mode>().Where(m => m < mode.Mode))
                {
                    yield return mode with { Mode = simpler };
                }

                break;
            case AdvanceStep advance when advance.Seconds > 1:
                yield return advance with { Seconds = 1 };
                yield return advance with { Seconds = advance.Seconds / 2 };
                yield return advance with { Seconds = advance.Seconds - 1 };
                break;
        }
    }

    private static IEnumerable<ModelConfig> Simpler(ModelConfig config)
    {
        if (config.SecondNode)
        {
            yield return config with { SecondNode = false };
        }

        if (config.HasL2 && !config.SecondNode)
        {
            yield return config with { HasL2 = false };
        }

        if (config.ShortLocalLifetime)
        {
            yield return config with { ShortLocalLifetime = false };
        }

        if (!config.BackgroundCompletion)
        {
            yield return config with { BackgroundCompletion = true }; // the default
        }

        if (config.Keys.Length > 1)
        {
            yield return config with { Keys = config.Keys[..^1] };
        }

        for (int k = 0; k < config.Keys.Length; k++)
        {
            KeyPolicy policy = config.Keys[k];
            foreach (KeyPolicy simpler in new[]
            {
                policy with { EagerRefresh = false },
                policy with { Tag = 0 },
                policy with { SoftTimeout = false },
                policy with { HardTimeout = false },
                policy with { FailSafe = false },
            }.Where(p => p != policy))
            {
                KeyPolicy[] keys = [.. config.Keys];
                keys[k] = simpler;
                yield return config with { Keys = keys };
            }
        }
    }
}
