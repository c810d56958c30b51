using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using CsCheck;

namespace CacheGuard.Tests.Model;

/// <summary>
/// Not a gate: a tool for finding every distinct way the core breaks a property, where the harness tests stop at the
/// simplest one. It samples programs, reduces each failing one, and groups the reduced programs by their text; each
/// group is one minimal sequence, with how often it was hit. Run it by hand:
/// <code>CACHEGUARD_MODEL_SURVEY_SECONDS=120 dotnet test tests/CacheGuard.Tests --filter "Name=Survey"</code>
/// </summary>
[Category("Model")]
[Explicit("A survey for people, not a gate: it reports, it never fails.")]
[NonParallelizable]
public partial class ModelSurveyTests
{
    [GeneratedRegex(@"\d+")]
    private static partial Regex Digits();

    [Test]
    public void Survey()
    {
        int seconds = int.TryParse(Environment.GetEnvironmentVariable("CACHEGUARD_MODEL_SURVEY_SECONDS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int s) ? s : 60;
        var found = new Dictionary<string, (ModelProperty Property, int Hits, ModelProgram Program, string Violation)>();
        var kinds = new Dictionary<string, int>();
        var clock = Stopwatch.StartNew();
        int runs = 0;
        ModelGenerators.Program.Sample(
            program =>
            {
                runs++;
                using var runner = new ModelRunner(program);
                ModelWorld world = runner.Run(collectUnobserved: true);
                foreach (ModelProperty property in Enum.GetValues<ModelProperty>())
                {
                    List<string> violations = ModelChecks.Check(world, property);
                    if (violations.Count == 0)
                    {
                        continue;
                    }

                    // Reducing costs seconds: reduce only the first few failures of each kind (the message without its numbers).
                    string kind = property + ": " + Digits().Replace(violations[0], "N");
                    kinds[kind] = kinds.TryGetValue(kind, out int count) ? count + 1 : 1;
                    if (count >= 3)
                    {
                        continue;
                    }

                    var failure = new ModelViolationException(property, violations, ModelReport.History(world));
                    (ModelProgram reduced, ModelViolationException reducedFailure) = ModelShrinker.Reduce(program, failure, property, TimeSpan.FromSeconds(5));
                    string key = property + "\n" + reduced.Print();
                    found[key] = found.TryGetValue(key, out var seen)
                        ? seen with { Hits = seen.Hits + 1 }
                        : (property, 1, reduced, reducedFailure.Violations[0]);
                }
            },
            writeLine: null,
            time: seconds,
            threads: 1);

        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"{runs:N0} programs in {clock.Elapsed.TotalSeconds:0} s; {found.Count} distinct minimal failing programs:");
        foreach ((string kind, int count) in kinds.OrderBy(k => k.Key))
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"  {count,5}x {kind}");
        }

        foreach (var group in found.Values.OrderBy(f => f.Property).ThenByDescending(f => f.Hits))
        {
            report.AppendLine();
            report.AppendLine(CultureInfo.InvariantCulture, $"== {group.Property} ({group.Hits} hits): {group.Violation}");
            report.Append(group.Program.Print());
            report.AppendLine(group.Program.ToCode());
        }

        TestContext.Out.WriteLine(report.ToString());
    }
}
