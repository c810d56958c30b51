using System.Globalization;
using System.Net;
using System.Security.Authentication;

namespace CacheGuard.Redis;

// Reading configuration strings: the StackExchange.Redis-style comma string and redis:// URIs.
public sealed partial class RedisConfiguration
{
    // StackExchange.Redis keys that tune that library's internals and mean nothing here: accepted, so existing
    // strings keep working, and ignored.
    private static readonly HashSet<string> IgnoredKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "allowAdmin", "connectRetry", "configCheckSeconds", "tiebreaker", "version", "resolveDns", "responseTimeout",
        "writeBuffer", "setlib", "highPrioritySocketThreads", "configChannel", "heartbeatInterval", "includeDetailInExceptions",
        "includePerformanceCountersInExceptions", "keepAliveTime",
    };

    /// <summary>
    /// Parses a StackExchange.Redis-style configuration string (<c>host:port,password=...,user=...,ssl=true,sslHost=...,
    /// defaultDatabase=2,connectTimeout=5000,asyncTimeout=2000,syncTimeout=...,name=...,abortConnect=false,keepAlive=60</c>)
    /// or a <c>redis://[user:password@]host[:port][/database][?key=value&amp;...]</c> URI (<c>rediss://</c> for TLS).
    /// </summary>
    /// <param name="configuration">The configuration string.</param>
    /// <returns>A new configuration.</returns>
    /// <exception cref="ArgumentException">The string is empty or a part of it is invalid; the message quotes the part (a password is never quoted).</exception>
    /// <remarks>Keys are case-insensitive. Keys of StackExchange.Redis that tune its own internals (<c>allowAdmin</c>, <c>connectRetry</c>, <c>tiebreaker</c>...) are accepted and ignored; unknown keys are an error unless <c>ignoreUnknown=true</c>.</remarks>
    public static RedisConfiguration Parse(string configuration)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(configuration);
        string trimmed = configuration.Trim();
        return trimmed.StartsWith("redis://", StringComparison.OrdinalIgnoreCase) || trimmed.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase)
            ? ParseUri(trimmed)
            : ParseOptionsString(trimmed);
    }

    private static RedisConfiguration ParseOptionsString(string configuration)
    {
        var result = new RedisConfiguration();
        var hosts = new List<(string Host, int Port)>();
        bool ignoreUnknown = false;
        bool asyncTimeoutSet = false;
        TimeSpan? syncTimeout = null;
        foreach (string rawPart in configuration.Split(','))
        {
            string part = rawPart.Trim();
            if (part.Length == 0)
            {
                continue;
            }

            int equals = part.IndexOf('=', StringComparison.Ordinal);
            if (equals < 0)
            {
                hosts.Add(ParseEndPoint(part));
                continue;
            }

            string key = part[..equals].Trim();
            string value = part[(equals + 1)..].Trim();
            if (key.Equals("ignoreUnknown", StringComparison.OrdinalIgnoreCase))
            {
                ignoreUnknown = ParseBool(key, value);
                continue;
            }

            if (key.Equals("syncTimeout", StringComparison.OrdinalIgnoreCase))
            {
                syncTimeout = ParseMilliseconds(key, value);
                continue;
            }

            if (key.Equals("asyncTimeout", StringComparison.OrdinalIgnoreCase))
            {
                asyncTimeoutSet = true;
            }

            if (!result.TryApply(key, value) && !IgnoredKeys.Contains(key) && !ignoreUnknown)
            {
                // Quote only the key: a misspelt "pasword=" must not put the password in an exception message.
                throw Invalid($"The Redis configuration keyword '{key}' is not supported. Check its spelling, or add ignoreUnknown=true to skip keywords this client does not use.");
            }
        }

        if (!asyncTimeoutSet && syncTimeout is { } sync)
        {
            result.AsyncTimeout = sync;
        }

        int defaultPort = result.Ssl ? 6380 : DefaultPort;
        foreach ((string host, int port) in hosts)
        {
            result.EndPoints.Add(new DnsEndPoint(host, port == 0 ? defaultPort : port));
        }

        return result;
    }

    private static RedisConfiguration ParseUri(string configuration)
    {
        if (!Uri.TryCreate(configuration, UriKind.Absolute, out Uri? uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw Invalid($"The Redis URI '{RedactUri(configuration)}' is not valid; expected redis://[user:password@]host[:port][/database].");
        }

        var result = new RedisConfiguration { Ssl = uri.Scheme.Equals("rediss", StringComparison.OrdinalIgnoreCase) };
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            string userInfo = uri.UserInfo;
            int colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            string user = Uri.UnescapeDataString(colon < 0 ? userInfo : userInfo[..colon]);
            string? password = colon < 0 ? null : Uri.UnescapeDataString(userInfo[(colon + 1)..]);
            if (password is null)
            {
                // redis://secret@host: a lone user-info part is the password, as redis-cli -u reads it.
                result.Password = user;
            }
            else
            {
                result.User = user.Length == 0 ? null : user;
                result.Password = password;
            }
        }

        string path = uri.AbsolutePath.Trim('/');
        if (path.Length > 0)
        {
            if (!int.TryParse(path, NumberStyles.None, CultureInfo.InvariantCulture, out int database))
            {
                throw Invalid($"The database '/{path}' in the Redis URI '{RedactUri(configuration)}' is not a number.");
            }

            result.DefaultDatabase = database;
        }

        string query = uri.Query.TrimStart('?');
        bool ignoreUnknown = query.Contains("ignoreUnknown=true", StringComparison.OrdinalIgnoreCase);
        foreach (string pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            string key = Uri.UnescapeDataString(equals < 0 ? pair : pair[..equals]);
            string value = equals < 0 ? string.Empty : Uri.UnescapeDataString(pair[(equals + 1)..]);
            if (!result.TryApply(key, value) && !IgnoredKeys.Contains(key) && !key.Equals("ignoreUnknown", StringComparison.OrdinalIgnoreCase) && !ignoreUnknown)
            {
                throw Invalid($"The Redis URI parameter '{key}' is not supported.");
            }
        }

        result.EndPoints.Add(new DnsEndPoint(uri.Host.Trim('[', ']'), uri.IsDefaultPort || uri.Port < 0 ? DefaultPort : uri.Port));
        return result;
    }

    private bool TryApply(string key, string value)
    {
        switch (key.ToUpperInvariant())
        {
            case "PASSWORD":
                Password = value;
                return true;
            case "USER":
                User = value.Length == 0 ? null : value;
                return true;
            case "SSL":
                Ssl = ParseBool(key, value);
                return true;
            case "SSLHOST":
                SslHost = value.Length == 0 ? null : value;
                return true;
            case "SSLPROTOCOLS":
                if (!Enum.TryParse(value.Replace('|', ','), ignoreCase: true, out SslProtocols protocols))
                {
                    throw Invalid($"The Redis configuration option '{key}={value}' is not valid; expected values such as Tls12 or Tls12|Tls13.");
                }

                SslProtocols = protocols;
                return true;
            case "CHECKCERTIFICATEREVOCATION":
                CheckCertificateRevocation = ParseBool(key, value);
                return true;
            case "DEFAULTDATABASE":
                DefaultDatabase = ParseInt(key, value, 0);
                return true;
            case "CONNECTTIMEOUT":
                ConnectTimeout = ParseMilliseconds(key, value);
                return true;
            case "ASYNCTIMEOUT":
                AsyncTimeout = ParseMilliseconds(key, value);
                return true;
            case "NAME":
                ClientName = value.Length == 0 ? null : value;
                return true;
            case "ABORTCONNECT":
                AbortOnConnectFail = ParseBool(key, value);
                return true;
            case "KEEPALIVE":
                KeepAlive = TimeSpan.FromSeconds(ParseInt(key, value, -1) is var seconds && seconds < 0 ? 0 : seconds);
                return true;
            case "PROTOCOL":
                if (!value.Equals("resp2", StringComparison.OrdinalIgnoreCase) && value != "2")
                {
                    throw Invalid($"The Redis configuration option '{key}={value}' is not supported: this client speaks RESP2.");
                }

                return true;
            case "SERVICENAME":
            case "PROXY":
            case "CHANNELPREFIX":
                throw Invalid($"The Redis configuration keyword '{key}' is not supported by CacheGuard.Redis (no Sentinel, proxy or channel prefix support).");
            default:
                return false;
        }
    }

    private static (string Host, int Port) ParseEndPoint(string part)
    {
        string host = part;
        string? portText = null;
        if (part.StartsWith('['))
        {
            int close = part.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw Invalid($"The Redis endpoint '{part}' is not valid: an IPv6 address needs a closing ']'.");
            }

            host = part[1..close];
            if (close + 1 < part.Length)
            {
                if (part[close + 1] != ':')
                {
                    throw Invalid($"The Redis endpoint '{part}' is not valid; expected [address]:port.");
                }

                portText = part[(close + 2)..];
            }
        }
        else
        {
            int colon = part.LastIndexOf(':');
            if (colon >= 0 && part.IndexOf(':', StringComparison.Ordinal) == colon)
            {
                host = part[..colon];
                portText = part[(colon + 1)..];
            }
        }

        if (host.Length == 0 || host.Any(char.IsWhiteSpace))
        {
            throw Invalid($"The Redis endpoint '{part}' is not valid; expected host:port.");
        }

        if (portText is null)
        {
            return (host, 0);
        }

        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw Invalid($"The Redis endpoint '{part}' is not valid: the port must be a number from 1 to 65535.");
        }

        return (host, port);
    }

    private static bool ParseBool(string key, string value) =>
        bool.TryParse(value, out bool result)
            ? result
            : throw Invalid($"The Redis configuration option '{key}={value}' is not valid; expected true or false.");

    private static int ParseInt(string key, string value, int minimum) =>
        int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int result) && result >= minimum
            ? result
            : throw Invalid($"The Redis configuration option '{key}={value}' is not valid; expected a whole number of at least {minimum}.");

    private static TimeSpan ParseMilliseconds(string key, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int result) && result > 0
            ? TimeSpan.FromMilliseconds(result)
            : throw Invalid($"The Redis configuration option '{key}={value}' is not valid; expected a positive number of milliseconds.");

    private static ArgumentException Invalid(string message) => new(message);

    private static string RedactUri(string uri)
    {
        int scheme = uri.IndexOf("://", StringComparison.Ordinal);
        int at = uri.LastIndexOf('@');
        return scheme >= 0 && at > scheme ? string.Concat(uri.AsSpan(0, scheme + 3), "*****", uri.AsSpan(at)) : uri;
    }
}
