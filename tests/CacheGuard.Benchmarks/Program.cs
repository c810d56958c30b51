using System.Reflection;
using System.Text.RegularExpressions;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using CacheGuard.Benchmarks;

// One command runs the whole suite:
//   dotnet run -c Release --project tests/CacheGuard.Benchmarks
// --quick runs every part on a short job, as a smoke test (CI); it never judges timings.
// --filter PATTERN... selects, as BenchmarkDotNet does, by full name; the stampede is
// "CacheGuard.Benchmarks.Stampede" and the Go comparison "CacheGuard.Benchmarks.GoSingleFlight".
bool quick = args.Contains("--quick");
List<string> bdnArgs = args.Where(a => a != "--quick").ToList();
List<string> filters = FilterValues(bdnArgs);
if (filters.Count == 0)
{
    filters.Add("*");
    bdnArgs.AddRange(["--filter", "*"]);
}

Type[] benchmarkTypes = [typeof(L1HitBenchmarks), typeof(L2HitBenchmarks), typeof(SingleFlightBenchmarks), typeof(MissThroughputBenchmarks)];
bool runBdn = benchmarkTypes
    .SelectMany(t => t.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null).Select(m => $"{t.FullName}.{m.Name}"))
    .Any(Selected);
bool runStampede = Selected("CacheGuard.Benchmarks.Stampede");
bool runGo = Selected("CacheGuard.Benchmarks.GoSingleFlight");

Console.WriteLine($"// CacheGuard benchmarks ({(quick ? "quick: a smoke test, the timings mean little" : "full")}); {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}");

var summaries = new List<Summary>();
if (runBdn)
{
    summaries.AddRange(BenchmarkSwitcher.FromTypes(benchmarkTypes).Run([.. bdnArgs], SuiteConfig.Create(quick)));
}

List<StampedeResult>? stampede = runStampede ? Stampede.Run(quick ? 3 : 30, Console.Out) : null;
List<GoResult>? go = runGo ? GoSingleFlight.Run(quick, Console.Out) : null;

string report = Report.Render(summaries, stampede, go, quick);
Console.WriteLine();
Console.WriteLine(report);
string artifacts = Path.Combine(Directory.GetCurrentDirectory(), "BenchmarkDotNet.Artifacts", "results");
Directory.CreateDirectory(artifacts);
string reportPath = Path.Combine(artifacts, "CacheGuard.Benchmarks-report.md");
File.WriteAllText(reportPath, report);
Console.WriteLine($"// Report written to {reportPath}");

// Exit non-zero only when a benchmark could not run; timings never fail the run.
List<string> failures = Report.Failures(summaries);
foreach (string failure in failures)
{
    Console.Error.WriteLine("// FAILED: " + failure);
}

return failures.Count == 0 ? 0 : 1;

bool Selected(string fullName) => filters.Any(f => Regex.IsMatch(fullName, "^" + Regex.Escape(f).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal) + "$", RegexOptions.IgnoreCase));

static List<string> FilterValues(List<string> arguments)
{
    var values = new List<string>();
    for (int i = 0; i < arguments.Count; i++)
    {
        if (arguments[i] is "--filter" or "-f")
        {
            for (int j = i + 1; j < arguments.Count && !arguments[j].StartsWith('-'); j++)
            {
                values.Add(arguments[j]);
            }
        }
    }

    return values;
}
