using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Perfolizer.Horology;

namespace CacheGuard.Benchmarks;

/// <summary>The BenchmarkDotNet configuration: the default job for real numbers, a short in-process job for <c>--quick</c>.</summary>
internal static class SuiteConfig
{
    public static IConfig Create(bool quick)
    {
        // Full: fixed counts rather than BenchmarkDotNet's open-ended auto mode, so the whole suite fits in its time
        // budget on a shared 2-core machine (5 warm-up and 15 measured iterations of 500 ms, after the pilot).
        Job job = quick
            ? Job.Default
                .WithToolchain(InProcessEmitToolchain.Instance)
                .WithLaunchCount(1)
                .WithWarmupCount(1)
                .WithIterationCount(3)
                .WithIterationTime(TimeInterval.FromMilliseconds(50))
                .WithEvaluateOverhead(false)
                .WithId("Quick")
            : Job.Default
                .WithLaunchCount(1)
                .WithWarmupCount(5)
                .WithIterationCount(15)
                .WithId("Full");

        return ManualConfig.Create(DefaultConfig.Instance)
            .AddJob(job)
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddColumn(new OpsPerSecondColumn())
            .WithOptions(ConfigOptions.DisableLogFile)
            // A shared 2-core machine can take longer than BenchmarkDotNet's default 2 minutes to build the generated project.
            .WithBuildTimeout(TimeSpan.FromMinutes(10));
    }

    /// <summary>Throughput, 10^9 / mean ns per operation: for the multi-threaded benchmarks, operations per wall-clock second.</summary>
    private sealed class OpsPerSecondColumn : IColumn
    {
        public string Id => nameof(OpsPerSecondColumn);

        public string ColumnName => "Ops/s";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Custom;

        public int PriorityInCategory => 0;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Dimensionless;

        public string Legend => "Operations per second: 10^9 / Mean (ns)";

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public bool IsAvailable(Summary summary) => true;

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            double? mean = summary[benchmarkCase]?.ResultStatistics?.Mean;
            return mean is > 0 ? (1e9 / mean.Value).ToString("N0", System.Globalization.CultureInfo.InvariantCulture) : "NA";
        }
    }
}
