using System.Globalization;
using System.Text;

namespace CacheGuard.Tests.Model;

/// <summary>A property violated by one run: what was wrong, and what the run did (its history), for the failure message.</summary>
internal sealed class ModelViolationException(ModelProperty property, IReadOnlyList<string> violations, string history)
    : Exception(Describe(property, violations, history))
{
    public ModelProperty Property { get; } = property;

    public IReadOnlyList<string> Violations { get; } = violations;

    private static string Describe(ModelProperty property, IReadOnlyList<string> violations, string history)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{property} violated:");
        foreach (string violation in violations.Take(5))
        {
            text.AppendLine("  - " + violation);
        }

        if (violations.Count > 5)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  ... and {violations.Count - 5} more");
        }

        text.Append(history);
        return text.ToString();
    }
}

/// <summary>Prints a run's history: each call with its invocation and return (#n is the run's global order, t the fake clock), each loader, each L2 call.</summary>
internal static class ModelReport
{
    private const int MaxLines = 120;

    public static string History(ModelWorld world)
    {
        var lines = new List<string> { "what the run did (#n: position in the run's global order; t: fake clock):" };
        foreach (OpRecord op in world.Ops)
        {
            lines.Add("  " + Call(world, op));
        }

        foreach (LoaderRun loader in world.Loaders.OrderBy(l => l.StartedAt))
        {
            string caller = world.Op(loader.OpId)?.Name ?? "background";
            string end = loader.EndedAt > 0 ? $"#{loader.EndedAt} {ModelChecks.Clock(loader.EndedClock)} {loader.Outcome}" : "still running";
            string values = string.Join(", ", loader.Stamps.Select(p => world.Producers[p.Value].Describe()));
            lines.Add($"  {loader.Name} on {ModelConfig.NodeName(loader.Node)} for {caller}: #{loader.StartedAt} {ModelChecks.Clock(loader.StartedClock)} -> {end}; read {values}");
        }

        foreach (L2Call call in world.L2Calls.OrderBy(c => c.ArrivedAt))
        {
            string caller = world.Op(call.OpId)?.Name ?? "background";
            string end = call.EndedAt > 0 ? $"#{call.EndedAt}" : "never answered";
            lines.Add($"  L2 {call.Kind} '{call.Key}' ({call.Mode}) for {caller}: #{call.ArrivedAt} -> {end} {call.Outcome}");
        }

        if (lines.Count > MaxLines)
        {
            int cut = lines.Count - MaxLines;
            lines = [.. lines.Take(MaxLines), $"  ... {cut} more lines"];
        }

        return string.Join(Environment.NewLine, lines) + Environment.NewLine;
    }

    private static string Call(ModelWorld world, OpRecord op)
    {
        string invoked = $"#{op.InvokedAt} {ModelChecks.Clock(op.InvokedClock)}";
        if (!op.Returned)
        {
            return $"{op.Describe()}: {invoked} -> never returned";
        }

        string returned = $"#{op.ReturnedAt} {ModelChecks.Clock(op.ReturnedClock)}";
        string outcome;
        if (op.Error is { } error)
        {
            outcome = $"threw {error.GetType().Name}: {error.Message}";
        }
        else if (op.IsWrite)
        {
            outcome = "wrote " + string.Join(", ", op.Written.OrderBy(p => p.Key).Select(p => $"{ModelConfig.KeyName(p.Key)} v{p.Value}"));
        }
        else if (op.Values.IsEmpty)
        {
            outcome = op.Lookup?.ToString() ?? "no values";
        }
        else
        {
            outcome = string.Join(", ", op.Values.OrderBy(p => p.Key).Select(p => world.Producers.TryGetValue(p.Value, out Producer? value) ? value.Describe() : $"unknown {p.Value}"));
        }

        return $"{op.Describe()}: {invoked} -> {returned}: {outcome}";
    }
}
