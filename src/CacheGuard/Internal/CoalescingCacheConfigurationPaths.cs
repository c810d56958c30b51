using System.Collections.Concurrent;

namespace CacheGuard.Internal;

/// <summary>
/// Which configuration section each cache's options were bound from, so a validation message can name the setting a
/// user has to fix (<c>CacheGuard:DefaultExpiration</c>) rather than only the property behind it.
/// </summary>
internal sealed class CoalescingCacheConfigurationPaths
{
    private const string OptionsPrefix = "CoalescingCacheOptions.";
    private readonly ConcurrentDictionary<string, string> _paths = new(StringComparer.Ordinal);

    public void Record(string optionsName, string sectionPath) => _paths[optionsName] = sectionPath;

    public bool TryGetPath(string optionsName, out string sectionPath) => _paths.TryGetValue(optionsName, out sectionPath!);

    /// <summary>
    /// Rewrites a message that starts with <c>CoalescingCacheOptions.X</c> to start with the configuration path of X,
    /// keeping the property name in parentheses; other messages, and options not bound from configuration, are unchanged.
    /// </summary>
    public string Locate(string? optionsName, string message)
    {
        if (!message.StartsWith(OptionsPrefix, StringComparison.Ordinal) || !_paths.TryGetValue(optionsName ?? string.Empty, out string? path))
        {
            return message;
        }

        int end = OptionsPrefix.Length;
        while (end < message.Length && char.IsAsciiLetterOrDigit(message[end]))
        {
            end++;
        }

        string option = message[OptionsPrefix.Length..end];
        string setting = path.Length == 0 ? option : string.Concat(path, ":", option);
        return $"{setting} ({message[..end]}){message[end..]}";
    }
}
