using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CacheGuard.Benchmarks;

/// <summary>One line of go/singleflight_bench.go's output.</summary>
internal sealed record GoResult(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("ns_per_op")] double NsPerOp,
    [property: JsonPropertyName("bytes_per_op")] long BytesPerOp,
    [property: JsonPropertyName("allocs_per_op")] long AllocsPerOp,
    [property: JsonPropertyName("n")] int N,
    [property: JsonPropertyName("loader_calls")] long LoaderCalls,
    [property: JsonPropertyName("extra_ms_median")] double ExtraMsMedian,
    [property: JsonPropertyName("extra_ms_max")] double ExtraMsMax,
    [property: JsonPropertyName("bytes_per_caller")] double BytesPerCaller);

/// <summary>
/// Runs Go's <c>golang.org/x/sync/singleflight</c> benchmark (go/singleflight_bench.go) on this machine, in this run,
/// so CacheGuard's numbers stand beside it. Needs Debian's <c>golang-go</c> and <c>golang-golang-x-sync-dev</c>; builds in
/// GOPATH mode against the packaged source, offline. Without Go, says so and returns nothing: the suite goes on.
/// </summary>
internal static class GoSingleFlight
{
    private const string GoPath = "/usr/share/gocode";

    public static List<GoResult>? Run(bool quick, TextWriter log)
    {
        string source = Path.Combine(AppContext.BaseDirectory, "go", "singleflight_bench.go");
        if (!File.Exists(source))
        {
            log.WriteLine($"// Go comparison skipped: {source} is missing.");
            return null;
        }

        if (!Directory.Exists(Path.Combine(GoPath, "src", "golang.org", "x", "sync", "singleflight")))
        {
            log.WriteLine("// Go comparison skipped: golang.org/x/sync is not installed (apt-get install -y golang-go golang-golang-x-sync-dev).");
            return null;
        }

        var start = new ProcessStartInfo("go")
        {
            WorkingDirectory = Path.GetDirectoryName(source)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("run");
        start.ArgumentList.Add("singleflight_bench.go");
        if (quick)
        {
            start.ArgumentList.Add("-quick");
        }

        start.Environment["GO111MODULE"] = "off";
        start.Environment["GOPATH"] = GoPath;
        start.Environment["GOFLAGS"] = string.Empty;
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("GOCACHE")))
        {
            start.Environment["GOCACHE"] = Path.Combine(Path.GetTempPath(), "cacheguard-benchmarks-gocache");
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            log.WriteLine("// Go comparison skipped: no 'go' on PATH (apt-get install -y golang-go golang-golang-x-sync-dev).");
            return null;
        }

        using (process)
        {
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
            {
                process.Kill(entireProcessTree: true);
                log.WriteLine("// Go comparison skipped: it ran for more than 5 minutes.");
                return null;
            }

            if (process.ExitCode != 0)
            {
                log.WriteLine($"// Go comparison skipped: go run exited {process.ExitCode}: {stderr.Result.Trim()}");
                return null;
            }

            var results = new List<GoResult>();
            foreach (string line in stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                results.Add(JsonSerializer.Deserialize<GoResult>(line) ?? throw new InvalidOperationException("Unreadable Go output: " + line));
            }

            return results;
        }
    }
}
