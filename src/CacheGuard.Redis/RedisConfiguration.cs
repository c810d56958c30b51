using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace CacheGuard.Redis;

/// <summary>
/// How to reach and talk to a Redis server. Parse the StackExchange.Redis-style string your settings already hold
/// (<c>host:port,password=...,ssl=true,defaultDatabase=2</c>) or a <c>redis://</c> / <c>rediss://</c> URI with
/// <see cref="Parse"/>, or set the properties.
/// </summary>
/// <remarks><see cref="ToString"/> never includes the password.</remarks>
public sealed partial class RedisConfiguration
{
    /// <summary>The port used when an endpoint names none: 6379 (6380 with <c>ssl=true</c> in a StackExchange.Redis string, as that library does).</summary>
    public const int DefaultPort = 6379;

    /// <summary>Gets the servers to connect to, tried in order until one accepts.</summary>
    /// <value>The endpoints; <c>localhost:6379</c> is used when empty.</value>
    public IList<DnsEndPoint> EndPoints { get; } = new List<DnsEndPoint>();

    /// <summary>Gets or sets the ACL user name for <c>AUTH user password</c>.</summary>
    /// <value>The user, or <see langword="null"/> for <c>AUTH password</c> (the <c>default</c> user).</value>
    public string? User { get; set; }

    /// <summary>Gets or sets the password sent with <c>AUTH</c>. Never logged or shown in exception messages.</summary>
    /// <value>The password, or <see langword="null"/> to send no <c>AUTH</c>.</value>
    public string? Password { get; set; }

    /// <summary>Gets or sets a value indicating whether to use TLS.</summary>
    /// <value><see langword="false"/> by default.</value>
    public bool Ssl { get; set; }

    /// <summary>Gets or sets the host name the server certificate must match.</summary>
    /// <value>The host name, or <see langword="null"/> to use the endpoint's host.</value>
    public string? SslHost { get; set; }

    /// <summary>Gets or sets the TLS versions allowed.</summary>
    /// <value><see cref="SslProtocols.None"/> by default: the operating system chooses.</value>
    public SslProtocols SslProtocols { get; set; }

    /// <summary>Gets or sets a value indicating whether the server certificate's revocation status is checked.</summary>
    /// <value><see langword="true"/> by default.</value>
    public bool CheckCertificateRevocation { get; set; } = true;

    /// <summary>Gets or sets a callback that validates the server certificate, replacing the default decision.</summary>
    /// <value><see langword="null"/> by default: the certificate must pass the platform's validation.</value>
    /// <remarks>
    /// The callback receives the errors found by the platform's validation (against <see cref="TrustedCertificateAuthorities"/>
    /// when that is not empty) and returns whether to accept the certificate. For a private CA, prefer
    /// <see cref="TrustedCertificateAuthorities"/>, which keeps host name and expiry checks.
    /// </remarks>
    public RemoteCertificateValidationCallback? CertificateValidation { get; set; }

    /// <summary>
    /// Gets the certificates trusted as roots when validating the server certificate (a private CA, or a self-signed
    /// server certificate). When empty, the operating system's trusted roots are used.
    /// </summary>
    /// <value>An empty collection by default.</value>
    /// <remarks>
    /// When not empty, these certificates replace the system roots for this connection (the chain must end at one of
    /// them); the server certificate must still match <see cref="SslHost"/> (or the endpoint's host) and be within its
    /// validity period. The root itself is not checked for revocation; set <see cref="CheckCertificateRevocation"/> to
    /// <see langword="false"/> when a private CA publishes no revocation list.
    /// </remarks>
    public X509Certificate2Collection TrustedCertificateAuthorities { get; } = [];

    /// <summary>Gets or sets the database selected on every connection (<c>SELECT</c>).</summary>
    /// <value>0 by default.</value>
    public int DefaultDatabase { get; set; }

    /// <summary>Gets or sets how long opening a connection (TCP, TLS and handshake) may take.</summary>
    /// <value>5 seconds by default.</value>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Gets or sets how long a command waits for its reply before failing with <see cref="RedisTimeoutException"/>.</summary>
    /// <value>5 seconds by default.</value>
    public TimeSpan AsyncTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Gets or sets the name set with <c>CLIENT SETNAME</c>, shown by <c>CLIENT LIST</c>.</summary>
    /// <value><see langword="null"/> by default: no name is set.</value>
    public string? ClientName { get; set; }

    /// <summary>Gets or sets a value indicating whether <see cref="RedisConnection.ConnectAsync"/> throws when the first connection fails.</summary>
    /// <value><see langword="true"/> by default. Either way the connection keeps retrying in the background.</value>
    public bool AbortOnConnectFail { get; set; } = true;

    /// <summary>Gets or sets how long a connection may stay idle before a <c>PING</c> is sent; a ping without a reply closes it.</summary>
    /// <value>60 seconds by default; <see cref="TimeSpan.Zero"/> turns keepalive off.</value>
    public TimeSpan KeepAlive { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Gets or sets the delay before the first reconnect attempt; each failure doubles it up to <see cref="ReconnectMaxDelay"/>.</summary>
    /// <value>100 milliseconds by default.</value>
    public TimeSpan ReconnectBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Gets or sets the longest delay between reconnect attempts.</summary>
    /// <value>5 seconds by default.</value>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Creates a copy that can be changed without affecting this instance.</summary>
    /// <returns>The copy.</returns>
    public RedisConfiguration Clone()
    {
        var copy = new RedisConfiguration
        {
            User = User,
            Password = Password,
            Ssl = Ssl,
            SslHost = SslHost,
            SslProtocols = SslProtocols,
            CheckCertificateRevocation = CheckCertificateRevocation,
            CertificateValidation = CertificateValidation,
            DefaultDatabase = DefaultDatabase,
            ConnectTimeout = ConnectTimeout,
            AsyncTimeout = AsyncTimeout,
            ClientName = ClientName,
            AbortOnConnectFail = AbortOnConnectFail,
            KeepAlive = KeepAlive,
            ReconnectBaseDelay = ReconnectBaseDelay,
            ReconnectMaxDelay = ReconnectMaxDelay,
        };
        foreach (DnsEndPoint endPoint in EndPoints)
        {
            copy.EndPoints.Add(endPoint);
        }

        copy.TrustedCertificateAuthorities.AddRange(TrustedCertificateAuthorities);

        return copy;
    }

    /// <summary>Returns the configuration as a StackExchange.Redis-style string with the password replaced by <c>*****</c>.</summary>
    /// <returns>The redacted configuration string.</returns>
    public override string ToString()
    {
        var builder = new StringBuilder();
        foreach (DnsEndPoint endPoint in EndPoints)
        {
            builder.Append(Format(endPoint)).Append(',');
        }

        if (User is not null)
        {
            builder.Append("user=").Append(User).Append(',');
        }

        if (Password is not null)
        {
            builder.Append("password=*****,");
        }

        builder.Append(CultureInfo.InvariantCulture, $"ssl={Ssl},");
        if (SslHost is not null)
        {
            builder.Append("sslHost=").Append(SslHost).Append(',');
        }

        builder.Append(CultureInfo.InvariantCulture, $"defaultDatabase={DefaultDatabase},connectTimeout={(long)ConnectTimeout.TotalMilliseconds},asyncTimeout={(long)AsyncTimeout.TotalMilliseconds},");
        if (ClientName is not null)
        {
            builder.Append("name=").Append(ClientName).Append(',');
        }

        builder.Append(CultureInfo.InvariantCulture, $"abortConnect={AbortOnConnectFail},keepAlive={(long)KeepAlive.TotalSeconds}");
        return builder.ToString();
    }

    /// <summary>Formats an endpoint as <c>host:port</c> (<c>[v6]:port</c> for an IPv6 literal).</summary>
    internal static string Format(DnsEndPoint endPoint) =>
        endPoint.Host.Contains(':', StringComparison.Ordinal)
            ? $"[{endPoint.Host}]:{endPoint.Port.ToString(CultureInfo.InvariantCulture)}"
            : $"{endPoint.Host}:{endPoint.Port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Checks the values that parsing cannot (set through properties).</summary>
    internal void Validate()
    {
        if (ConnectTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ConnectTimeout), ConnectTimeout, "ConnectTimeout must be positive.");
        }

        if (AsyncTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(AsyncTimeout), AsyncTimeout, "AsyncTimeout must be positive.");
        }

        if (DefaultDatabase < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(DefaultDatabase), DefaultDatabase, "DefaultDatabase must be 0 or more.");
        }

        if (ReconnectBaseDelay <= TimeSpan.Zero || ReconnectMaxDelay < ReconnectBaseDelay)
        {
            throw new ArgumentOutOfRangeException(nameof(ReconnectMaxDelay), ReconnectMaxDelay, "ReconnectBaseDelay must be positive and ReconnectMaxDelay at least as long.");
        }
    }
}
