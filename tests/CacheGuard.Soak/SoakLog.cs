using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace CacheGuard.Soak;

/// <summary>
/// The run's log file (artifacts/soak-SEED.log): faults, violations with their evidence, and the nodes' own log
/// events (Information and above). Every line starts with the run time. Node events are all counted by id; each id
/// writes at most <see cref="LinesPerEventPerSecond"/> lines a second to the file, so an outage does not drown the log.
/// </summary>
internal sealed class SoakLog : IDisposable
{
    private const int LinesPerEventPerSecond = 5;

    private readonly Lock _gate = new();
    private readonly StreamWriter _file;
    private readonly ConcurrentDictionary<(int Node, int EventId, LogLevel Level), long> _events = new();
    private readonly ConcurrentDictionary<int, (long Second, int Lines)> _budget = new();
    private long _suppressed;

    /// <summary>Called for every node event (node, category, id, level) before it is written; set once, before the nodes start.</summary>
    public Action<int, string, int, LogLevel>? OnEvent { get; set; }

    public SoakLog(string path)
    {
        Path = path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        _file = new StreamWriter(path, append: false) { AutoFlush = false };
    }

    public string Path { get; }

    /// <summary>Node log lines not written because their event id was over its per-second budget.</summary>
    public long Suppressed => Interlocked.Read(ref _suppressed);

    /// <summary>Writes a line to the file, and to the console when <paramref name="console"/> is set.</summary>
    public void Write(string line, bool console = false)
    {
        string stamped = $"{Clock.Stamp(Clock.Now)} {line}";
        lock (_gate)
        {
            _file.WriteLine(stamped);
        }

        if (console)
        {
            Console.WriteLine(stamped);
        }
    }

    /// <summary>How many times each node logged each event, for the report.</summary>
    public IReadOnlyDictionary<(int Node, int EventId, LogLevel Level), long> EventCounts => _events;

    public void Flush()
    {
        lock (_gate)
        {
            _file.Flush();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _file.Dispose();
        }
    }

    /// <summary>A logger provider for one node: counts every event and writes it within the budget.</summary>
    public ILoggerProvider ProviderFor(int node) => new NodeLoggerProvider(this, node);

    private void OnNodeEvent(int node, string category, LogLevel level, EventId eventId, string message, Exception? exception)
    {
        _events.AddOrUpdate((node, eventId.Id, level), 1, static (_, n) => n + 1);
        OnEvent?.Invoke(node, category, eventId.Id, level);
        long second = (long)Clock.Seconds(Clock.Now);
        (long Second, int Lines) budget = _budget.AddOrUpdate(
            eventId.Id,
            (second, 1),
            (_, b) => b.Second == second ? (second, b.Lines + 1) : (second, 1));
        if (budget.Lines > LinesPerEventPerSecond)
        {
            Interlocked.Increment(ref _suppressed);
            return;
        }

        string error = exception is null ? string.Empty : $" | {exception.GetType().Name}: {exception.Message}";
        Write($"node{node} {level} {category}[{eventId.Id}] {message}{error}");
    }

    private sealed class NodeLoggerProvider(SoakLog log, int node) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new NodeLogger(log, node, categoryName);

        public void Dispose()
        {
        }
    }

    private sealed class NodeLogger(SoakLog log, int node, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                log.OnNodeEvent(node, category, logLevel, eventId, formatter(state, exception), exception);
            }
        }
    }
}
