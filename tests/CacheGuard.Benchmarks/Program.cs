using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using CacheGuard.Benchmarks;

// One command runs the whole suite, CacheGuard beside HybridCache, FusionCache and raw Microsoft.Extensions.Caching:
//   dotnet run -c Release --project tests/CacheGuard.Benchmarks
// It writes the report to BenchmarkDotNet.Artifacts/results/, and (full, unfiltered run) the charts to docs/images/
// and the tables into docs/benchmarks.md between its generated-section markers.
// --quick runs every part with tiny counts on a short job, as a smoke test (CI); it never judges timings and leaves
// docs/ alone. --docs writes docs/ even from a quick or filtered run.
// --filter PATTERN... selects by full name, as BenchmarkDotNet does: BenchmarkDotNet classes by method
// (CacheGuard.Benchmarks.L1HitBenchmarks.*), and "CacheGuard.Benchmarks.Stampede", "CacheGuard.Benchmarks.GoSingleFlight",
// "CacheGuard.Benchmarks.Redis.Throughput", ".Redis.L2Hit", ".Redis.ColdBatch", ".Redis.ThreeNodes", ".Redis.Outage" (redis-server needed).
// --profile-l2-hit [callers]: where an L2 hit's bytes go, by type (AllocationProfile.cs), 64 callers unless given; prints and exits.
int profileAt = Array.IndexOf(args, "--profile-l2-hit");
if (profileAt >= 0)
{
    int callers = profileAt + 1 < args.Length && int.TryParse(args[profileAt + 1], System.Globalization.CultureInfo.InvariantCulture, out int given) && given > 0 ? given : 64;
    await AllocationProfile.RunAsync(Console.Out, callers);
    return 0;
}

bool quick = args.Contains("--quick");
if (quick)
{
    // Read here and by any process BenchmarkDotNet starts.
    Environment.SetEnvironmentVariable(MissThroughputBenchmarks.QuickVariable, "1");
}

bool forceDocs = args.Contains("--docs");
List<string> bdnArgs = args.Where(a => a is not "--quick" and not "--docs").ToList();
List<string> filters = FilterValues(bdnArgs);
bool filtered = filters.Count > 0;
if (!filtered)
{
    filters.Add("*");
    bdnArgs.AddRange(["--filter", "*"]);
}

Type[] benchmarkTypes = [typeof(L1HitBenchmarks), typeof(MissThroughputBenchmarks), typeof(SingleFlightBenchmarks)];
bool runBdn = benchmarkTypes
    .SelectMany(t => t.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null).Select(m => $"{t.FullName}.{m.Name}"))
    .Any(Selected);

Console.WriteLine($"// CacheGuard benchmarks ({(quick ? "quick: a smoke test, the timings mean little" : "full")}); {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}");
long started = Stopwatch.GetTimestamp();
var results = new SuiteResults { Quick = quick, Filtered = filtered };
if (runBdn)
{
    results.Summaries.AddRange(BenchmarkSwitcher.FromTypes(benchmarkTypes).Run([.. bdnArgs], SuiteConfig.Create(quick)));
}

if (Selected("CacheGuard.Benchmarks.L1HitBenchmarks.Raw_Product"))
{
    results.L1SameInstance = L1HitBenchmarks.CheckInstances();
}

Console.WriteLine($"// BenchmarkDotNet part done at {Stopwatch.GetElapsedTime(started).TotalSeconds:0} s");
results.Stampede = Selected("CacheGuard.Benchmarks.Stampede") ? Stampede.Run(quick, Console.Out) : null;
Console.WriteLine($"// Stampede part done at {Stopwatch.GetElapsedTime(started).TotalSeconds:0} s");
results.Go = Selected("CacheGuard.Benchmarks.GoSingleFlight") ? GoSingleFlight.Run(quick, Console.Out) : null;
results.Redis = RedisSuite.Parts.Any(part => Selected("CacheGuard.Benchmarks.Redis." + part))
    ? await RedisSuite.RunAsync(quick, Selected, Console.Out)
    : null;
Console.WriteLine($"// Redis part done at {Stopwatch.GetElapsedTime(started).TotalSeconds:0} s");
results.Elapsed = Stopwatch.GetElapsedTime(started);

string report = Report.Render(results);
string artifacts = Path.Combine(Directory.GetCurrentDirectory(), "BenchmarkDotNet.Artifacts", "results");
Directory.CreateDirectory(artifacts);
string reportPath = Path.Combine(artifacts, "CacheGuard.Benchmarks-report.md");
File.WriteAllText(reportPath, "# CacheGuard benchmark report\n\n" + report);
List<string> charts = Charts.Write(results, Path.Combine(artifacts, "images"));
Console.WriteLine();
Console.WriteLine(report);
Console.WriteLine($"// Report written to {reportPath}; {charts.Count} chart(s) beside it in images/");

if ((!quick && !filtered) || forceDocs)
{
    DocsPage.Update(report, results);
}

// Exit non-zero only when a benchmark could not run; timings never fail the run.
List<string> failures = Report.Failures(results.Summaries);
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
