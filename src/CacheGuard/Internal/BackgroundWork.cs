using Microsoft.Extensions.Logging;

namespace CacheGuard.Internal;

/// <summary>
/// Every task the cache starts without a caller to await it (background completion after a timeout, early refresh,
/// replay, backplane announcements, tag checks): counted while it runs, its failure logged, never left unobserved.
/// </summary>
internal sealed class BackgroundWork(CacheSettings settings, ILogger logger)
{
    private readonly CacheSettings _settings = settings;
    private readonly ILogger _logger = logger;
    private int _count;

    /// <summary>Gets the number of background tasks running: a test hook.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Observes <paramref name="work"/>: counted while it runs, a failure logged with <paramref name="key"/> (as telemetry allows).</summary>
    public void Track(Task work, string key)
    {
        if (work.IsCompletedSuccessfully)
        {
            return;
        }

        Interlocked.Increment(ref _count);
        _ = ObserveAsync(this, work, key);

        static async Task ObserveAsync(BackgroundWork self, Task work, string key)
        {
            try
            {
                await work.ConfigureAwait(false);
            }
#pragma warning disable CA1031 // Background work has no caller to throw to: log it.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                Log.BackgroundLoadFailed(self._logger, self._settings.Name, self._settings.LogKey(key), ex);
            }
            finally
            {
                Interlocked.Decrement(ref self._count);
            }
        }
    }
}
