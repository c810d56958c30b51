using System.Diagnostics;

namespace CacheGuard.Internal;

/// <summary>
/// CacheGuard's traces, on the <see cref="ActivitySource"/> named <c>CacheGuard</c>: one activity per load and per L2
/// call. Keys are attached (<c>cache.key</c>) only when <see cref="CoalescingCacheOptions.IncludeKeysInTelemetry"/> is on.
/// </summary>
internal static class CacheTelemetry
{
    public const string SourceName = "CacheGuard";
    public const string LoadActivity = "cacheguard.load";
    public const string L2ReadActivity = "cacheguard.l2.read";
    public const string L2WriteActivity = "cacheguard.l2.write";
    public const string L2RemoveActivity = "cacheguard.l2.remove";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>Starts an activity when someone listens; otherwise returns <see langword="null"/> at the cost of one check.</summary>
    public static Activity? Start(string name, string cacheName, string key, bool includeKey)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        Activity? activity = Source.StartActivity(name, ActivityKind.Internal);
        if (activity is not null)
        {
            activity.SetTag("cache.name", cacheName);
            if (includeKey)
            {
                activity.SetTag("cache.key", key);
            }
        }

        return activity;
    }

    public static void Fail(Activity? activity, string errorType, Exception? exception = null)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetStatus(ActivityStatusCode.Error, exception?.Message ?? errorType);
        activity.SetTag("error.type", errorType);
    }
}
