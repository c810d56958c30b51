using System.Globalization;
using System.Text.RegularExpressions;

namespace CacheGuard.Redis.Tests;

/// <summary>Reads how often a server ran a command (INFO commandstats), for tests that count round trips.</summary>
internal static partial class CommandStats
{
    public static async Task<long> CallsAsync(RedisServer server, string command)
    {
        string stats = await server.CliAsync("INFO", "commandstats");
        Match match = CommandCalls().Match(stats.Replace("cmdstat_" + command + ":", "\nTARGET:", StringComparison.Ordinal));
        return match.Success ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
    }

    [GeneratedRegex(@"\nTARGET:calls=(\d+)")]
    private static partial Regex CommandCalls();
}
