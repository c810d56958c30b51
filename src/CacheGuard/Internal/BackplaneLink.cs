using Microsoft.Extensions.Logging;

namespace CacheGuard.Internal;

/// <summary>
/// This node's side of the backplane: announcing changes made here. A failed announcement is logged and never reaches a
/// caller (a lost message is bounded by the L1 lifetime). Receiving is <see cref="Invalidations"/>'s.
/// </summary>
internal sealed class BackplaneLink(CacheSettings settings, ICacheBackplane? backplane, ILogger logger)
{
    public bool Enabled => backplane is not null;

    /// <summary>Starts delivering other nodes' announcements to <paramref name="sink"/>.</summary>
    public IDisposable? Subscribe(ICacheInvalidationSink sink) => backplane?.Subscribe(settings.Name, sink);

    /// <summary>Announces a change of <paramref name="key"/> or <paramref name="tag"/>; the caller's cancellation is the only exception.</summary>
    public ValueTask AnnounceAsync(string? key, string? tag, CancellationToken cancellationToken)
    {
        if (backplane is null)
        {
            return ValueTask.CompletedTask;
        }

        return AnnounceCoreAsync(backplane, new CacheInvalidation(settings.Name, key, tag), cancellationToken);
    }

    private async ValueTask AnnounceCoreAsync(ICacheBackplane target, CacheInvalidation invalidation, CancellationToken cancellationToken)
    {
        try
        {
            await target.PublishAsync(invalidation, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // A lost announcement is bounded by the L1 lifetime: log it, never fail the caller.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Log.BackplanePublishFailed(logger, settings.Name, ex);
        }
    }
}
