using BenchmarkDotNet.Reports;

namespace CacheGuard.Benchmarks;

/// <summary>Everything one run measured, for the report and the charts. A part that did not run is null or empty.</summary>
internal sealed class SuiteResults
{
    public required bool Quick { get; init; }

    /// <summary>Whether <c>--filter</c> left parts or rows out.</summary>
    public required bool Filtered { get; init; }

    public List<Summary> Summaries { get; } = [];

    /// <summary>For each L1-hit benchmark method, whether it returns the cached instance.</summary>
    public Dictionary<string, bool>? L1SameInstance { get; set; }

    public List<StampedeResult>? Stampede { get; set; }

    public List<GoResult>? Go { get; set; }

    public RedisResults? Redis { get; set; }

    public TimeSpan Elapsed { get; set; }

    /// <summary>The BenchmarkDotNet report of a method, by its name.</summary>
    public BenchmarkReport? Find(string method) =>
        Summaries.SelectMany(s => s.Reports).FirstOrDefault(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method && r.ResultStatistics is not null);

    /// <summary>Mean nanoseconds per operation of a method, or null when it did not run.</summary>
    public double? Mean(string method) => Find(method)?.ResultStatistics?.Mean;

    /// <summary>A miss-throughput method's nanoseconds and bytes per key (its invocation loads every key once).</summary>
    public (double Ns, double Bytes)? PerKey(string method) =>
        Mean(method) is { } mean ? (mean / MissThroughputBenchmarks.KeyCount, (Allocated(method) ?? 0) / (double)MissThroughputBenchmarks.KeyCount) : null;

    /// <summary>Bytes allocated per operation of a method, or null when it did not run.</summary>
    public long? Allocated(string method) => Find(method) is { } r ? r.GcStats.GetBytesAllocatedPerOperation(r.BenchmarkCase) : null;
}
