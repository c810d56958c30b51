using System.Diagnostics.Metrics;

namespace CacheGuard.Benchmarks;

/// <summary>
/// A minimal <see cref="IMeterFactory"/> whose meters carry it as their scope, so a listener can observe one cache's
/// instruments and leave every other cache in the process unobserved.
/// </summary>
internal sealed class ScopedMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var meter = new Meter(new MeterOptions(options.Name) { Version = options.Version, Tags = options.Tags, Scope = this });
        lock (_meters)
        {
            _meters.Add(meter);
        }

        return meter;
    }

    public void Dispose()
    {
        lock (_meters)
        {
            foreach (Meter meter in _meters)
            {
                meter.Dispose();
            }

            _meters.Clear();
        }
    }
}
