using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace CacheGuard.Soak;

/// <summary>
/// Diagnostics for a violation: what L2 holds for a key right now, read with the injector's raw client and decoded as
/// far as the soak needs (the envelope's creation and expiry times from CacheGuard's v1 header, the row version from
/// the JSON payload). Evidence for the log, never part of a verdict.
/// </summary>
internal static partial class L2Probe
{
    /// <summary>Describes the L2 entry of <paramref name="key"/>: "v7 created at 12.3s, logical expiry 42.3s, TTL 29.1 s", or why there is none.</summary>
    public static async Task<string> DescribeAsync(int port, string key, DateTimeOffset runStartUtc)
    {
        try
        {
            (byte[]? data, long ttl) = await SoakRedis.ReadEntryAsync(port, key);
            if (data is null)
            {
                return ttl == -2 ? "L2 has no entry" : $"L2 holds no readable hash (TTL {ttl} ms)";
            }

            string version = VersionPattern().Match(Encoding.UTF8.GetString(data)) is { Success: true } m ? "v" + m.Groups[1].Value : "no version";
            if (data.Length < 48 || data[0] != 'C' || data[1] != 'G')
            {
                return $"L2 holds {data.Length} bytes that are not an envelope ({version}), TTL {ttl} ms";
            }

            double created = (new DateTimeOffset(BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(8)), TimeSpan.Zero) - runStartUtc).TotalSeconds;
            double expires = (new DateTimeOffset(BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(16)), TimeSpan.Zero) - runStartUtc).TotalSeconds;
            return string.Create(CultureInfo.InvariantCulture, $"L2 holds {version}, created at {created:0.000}s, logical expiry {expires:0.0}s, TTL {ttl / 1000.0:0.0} s");
        }
        catch (Exception ex) when (ex is IOException or FormatException or ArgumentException)
        {
            return $"L2 could not be read: {ex.Message}";
        }
    }

    [GeneratedRegex("\"Version\":(\\d+)")]
    private static partial Regex VersionPattern();
}
