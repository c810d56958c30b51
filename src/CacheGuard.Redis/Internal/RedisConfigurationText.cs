using System.Globalization;
using System.Net;
using StackExchange.Redis;

namespace CacheGuard.Redis.Internal;

/// <summary>
/// Checks a StackExchange.Redis configuration string before anything connects, so a bad string fails at registration
/// with a message naming the bad part. StackExchange.Redis's own parser drops an endpoint it cannot read
/// (<c>127.0.0.1:notaport</c>) without a word; this check does not. Nothing it reports ever quotes a password.
/// </summary>
internal static class RedisConfigurationText
{
    /// <summary>Parses <paramref name="configuration"/> with StackExchange.Redis after checking every endpoint.</summary>
    /// <exception cref="ArgumentException">The string is empty, an endpoint is malformed, or a keyword or value is not recognised.</exception>
    public static ConfigurationOptions Parse(string configuration, string parameterName)
    {
        ArgumentNullException.ThrowIfNull(configuration, parameterName);
        if (string.IsNullOrWhiteSpace(configuration))
        {
            throw new ArgumentException("The Redis configuration string is empty: give at least one endpoint, such as 'localhost:6379'.", parameterName);
        }

        int endpoints = 0;
        string? previousKey = null;
        foreach (string raw in configuration.Split(','))
        {
            string part = raw.Trim();
            if (part.Length == 0)
            {
                continue;
            }

            int equals = part.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
            {
                previousKey = part[..equals].Trim();
                continue;
            }

            string? problem = EndPointProblem(part);
            if (problem is not null)
            {
                // A password that contains ',' splits into parts that look like endpoints: never quote those.
                bool mayBeSecret = IsSecretKey(previousKey) || part.Contains('@', StringComparison.Ordinal);
                string shown = mayBeSecret ? $"the part after '{previousKey ?? "the start"}='" : $"'{part}'";
                throw new ArgumentException(
                    $"The Redis configuration string has an invalid endpoint: {shown} {problem}. Endpoints are 'host', 'host:port' or '[IPv6]:port'" +
                    (mayBeSecret ? "; a password containing ',' cannot be given in a configuration string: set ConfigurationOptions.Password instead." : "."),
                    parameterName);
            }

            endpoints++;
            previousKey = null;
        }

        ConfigurationOptions parsed;
        try
        {
            parsed = ConfigurationOptions.Parse(configuration);
        }
        catch (ArgumentException ex)
        {
            // StackExchange.Redis names the keyword, and quotes only values of keywords that take numbers, booleans or
            // enumerations: never a password.
            throw new ArgumentException($"The Redis configuration string is invalid: {ex.Message}", parameterName, ex);
        }

        if (endpoints == 0)
        {
            throw new ArgumentException("The Redis configuration string names no endpoint: give at least one, such as 'localhost:6379'.", parameterName);
        }

        return parsed;
    }

    /// <summary>Gets what is wrong with an endpoint part, or <see langword="null"/> when it is well formed.</summary>
    internal static string? EndPointProblem(string part)
    {
        if (part.Contains("://", StringComparison.Ordinal))
        {
            return "is a URI; StackExchange.Redis reads 'host:port,password=...' strings, not redis:// URIs";
        }

        string host;
        string? port;
        if (part.StartsWith('['))
        {
            int close = part.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                return "has '[' without ']'";
            }

            host = part[1..close];
            string rest = part[(close + 1)..];
            if (rest.Length > 0 && rest[0] != ':')
            {
                return "has text after ']' that is not ':port'";
            }

            port = rest.Length > 0 ? rest[1..] : null;
            if (!IPAddress.TryParse(host, out IPAddress? address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                return "has brackets around something that is not an IPv6 address";
            }
        }
        else if (part.Count(static c => c == ':') > 1)
        {
            return IPAddress.TryParse(part, out _) ? null : "is neither host:port nor an IPv6 address (write '[address]:port')";
        }
        else
        {
            int colon = part.IndexOf(':', StringComparison.Ordinal);
            host = colon < 0 ? part : part[..colon];
            port = colon < 0 ? null : part[(colon + 1)..];
            if (host.Length == 0)
            {
                return "has no host";
            }

            foreach (char c in host)
            {
                if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
                {
                    return $"has a host name with the character '{c}'";
                }
            }
        }

        if (port is not null && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int number) || number is < 1 or > 65535))
        {
            return "has a port that is not a number from 1 to 65535";
        }

        return null;
    }

    /// <summary>Describes a configuration for an exception or log line: endpoints only, no credentials.</summary>
    public static string Describe(ConfigurationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.EndPoints.Count == 0 ? "(no endpoints)" : string.Join(",", options.EndPoints.Select(Format));
    }

    /// <summary>Writes an endpoint as host:port.</summary>
    public static string Format(EndPoint? endPoint) => endPoint switch
    {
        DnsEndPoint dns => dns.Host + ":" + dns.Port.ToString(CultureInfo.InvariantCulture),
        IPEndPoint ip => ip.ToString(),
        null => "(unknown)",
        _ => endPoint.ToString() ?? "(unknown)",
    };

    private static bool IsSecretKey(string? key) =>
        key is not null && (key.Equals("password", StringComparison.OrdinalIgnoreCase) || key.Equals("sentinelPassword", StringComparison.OrdinalIgnoreCase));
}
