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
// "CacheGuard.Benchmarks.Stampede", the Go comparison "CacheGuard.Benchmarks.GoSingleFlight" and the Redis
// part (needs redis-server and redis-benchmark) "CacheGuard.Benchmarks.Redis"; the miss path's allocation breakdown
// "CacheGuard.Benchmarks.AllocationBreakdown".
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
bool runRedis = Selected("CacheGuard.Benchmarks.Redis");
bool runBreakdown = Selected("CacheGuard.Benchmarks.AllocationBreakdown");

Console.WriteLine($"// CacheGuard benchmarks ({(quick ? "quick: a smoke test, the timings mean little" : "full")}); {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}");

var summaries = new List<Summary>();
if (runBdn)
{
    summaries.AddRange(BenchmarkSwitcher.FromTypes(benchmarkTypes).Run([.. bdnArgs], SuiteConfig.Create(quick)));
}

List<AllocationShare>? breakdown = runBreakdown ? AllocationBreakdown.Run() : null;
List<StampedeResult>? stampede = runStampede ? Stampede.Run(quick ? 3 : 30, Console.Out) : null;
List<GoResult>? go = runGo ? GoSingleFlight.Run(quick, Console.Out) : null;
List<RedisThroughput>? redis = runRedis ? await RedisSuite.RunAsync(quick, Console.Out) : null;

string report = Report.Render(summaries, breakdown, stampede, go, redis, quick);
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
