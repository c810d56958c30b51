using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// A redis-server with TLS on one port (and plain TCP on another, for readiness and redis-cli), serving a self-signed
/// certificate made here for 127.0.0.1 and localhost.
/// </summary>
public class TlsTests
{
    private string _directory = null!;
    private X509Certificate2 _certificate = null!;
    private RedisServer _server = null!;
    private int _tlsPort;

    [OneTimeSetUp]
    public async Task StartTlsServer()
    {
        _directory = Path.Combine(Path.GetTempPath(), "cacheguard-tls-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
        _certificate = CreateSelfSignedCertificate();
        string certificateFile = Path.Combine(_directory, "cert.pem");
        string keyFile = Path.Combine(_directory, "key.pem");
        await File.WriteAllTextAsync(certificateFile, _certificate.ExportCertificatePem());
        using (ECDsa key = _certificate.GetECDsaPrivateKey()!)
        {
            await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem());
        }

        _tlsPort = RedisServer.FreePort();
        _server = await RedisServer.StartAsync(
            "--tls-port", _tlsPort.ToString(CultureInfo.InvariantCulture),
            "--tls-cert-file", certificateFile,
            "--tls-key-file", keyFile,
            "--tls-auth-clients", "no");
    }

    [OneTimeTearDown]
    public async Task StopTlsServer()
    {
        await _server.DisposeAsync();
        _certificate.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Test]
    public async Task TrustedCertificateAuthority_SetAndGetOverTls()
    {
        await using var connection = new RedisConnection(Tls(c => c.TrustedCertificateAuthorities.Add(_certificate)));
        await connection.ExecuteAsync(new RedisCommand("SET", "tls:key", "over-tls"));
        Assert.That((await connection.ExecuteAsync(new RedisCommand("GET", "tls:key"))).ToText(), Is.EqualTo("over-tls"));

        // The server sees this client on its TLS port, not the plain one.
        string clients = await _server.CliAsync("CLIENT", "LIST");
        Assert.That(clients, Does.Contain("laddr=127.0.0.1:" + _tlsPort.ToString(CultureInfo.InvariantCulture)));
    }

    [Test]
    public async Task TrustedCertificateAuthority_SslHostNamesTheCertificate()
    {
        await using var byName = new RedisConnection(Tls(c =>
        {
            c.SslHost = "localhost";
            c.TrustedCertificateAuthorities.Add(_certificate);
        }));
        Assert.That((await byName.ExecuteAsync(new RedisCommand("PING"))).ToText(), Is.EqualTo("PONG"));

        await using var wrongName = new RedisConnection(Tls(c =>
        {
            c.SslHost = "redis.example.org";
            c.TrustedCertificateAuthorities.Add(_certificate);
        }));
        var ex = Assert.ThrowsAsync<RedisConnectionException>(() => wrongName.ConnectAsync().WaitAsync(TestConnections.Guard));
        Assert.Multiple(() =>
        {
            Assert.That(ex!.FailureType, Is.EqualTo(RedisConnectionFailureType.UnableToConnect));
            Assert.That(ex.Message, Does.Contain("TLS handshake").And.Contain(Endpoint).And.Contain("RemoteCertificateNameMismatch"));
        });
    }

    [Test]
    public async Task ValidationCallback_ThatPinsTheCertificate_IsUsed()
    {
        int calls = 0;
        await using var connection = new RedisConnection(Tls(c => c.CertificateValidation = (_, certificate, _, _) =>
        {
            Interlocked.Increment(ref calls);
            return certificate is not null && certificate.GetCertHashString() == _certificate.GetCertHashString();
        }));
        Assert.That((await connection.ExecuteAsync(new RedisCommand("ECHO", "pinned"))).ToText(), Is.EqualTo("pinned"));
        Assert.That(calls, Is.EqualTo(1));
    }

    [Test]
    public async Task UntrustedCertificate_FailsTheConnectWithATlsError()
    {
        await using var connection = new RedisConnection(Tls());
        var ex = Assert.ThrowsAsync<RedisConnectionException>(() => connection.ConnectAsync().WaitAsync(TestConnections.Guard));
        Assert.Multiple(() =>
        {
            Assert.That(ex!.FailureType, Is.EqualTo(RedisConnectionFailureType.UnableToConnect));
            Assert.That(ex.Message, Does.Contain("TLS handshake").And.Contain(Endpoint).And.Contain("TrustedCertificateAuthorities"));
            Assert.That(ex.GetBaseException(), Is.InstanceOf<System.Security.Authentication.AuthenticationException>());
        });

        // A command (no ConnectAsync) fails the same way rather than hanging.
        await using var lazy = new RedisConnection(Tls());
        var viaCommand = Assert.ThrowsAsync<RedisConnectionException>(async () => await lazy.ExecuteAsync(new RedisCommand("PING")).AsTask().WaitAsync(TestConnections.Guard));
        Assert.That(viaCommand!.Message, Does.Contain("TLS handshake"));
    }

    [Test]
    public async Task PlainClientOnTheTlsPort_FailsPromptlyAndSaysTheServerSpeaksTls()
    {
        // Long command timeout: the failure must come from the server's answer, not from waiting.
        RedisConfiguration plain = RedisConfiguration.Parse($"127.0.0.1:{_tlsPort}");
        plain.AsyncTimeout = TimeSpan.FromSeconds(30);
        await using var connection = new RedisConnection(plain);
        var elapsed = Stopwatch.StartNew();
        var ex = Assert.ThrowsAsync<RedisConnectionException>(async () => await connection.ExecuteAsync(new RedisCommand("PING")).AsTask().WaitAsync(TestConnections.Guard));
        Assert.Multiple(() =>
        {
            Assert.That(elapsed.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
            Assert.That(ex!.Message, Does.Contain(Endpoint).And.Contain("ssl=true"));
        });
    }

    private string Endpoint => "127.0.0.1:" + _tlsPort.ToString(CultureInfo.InvariantCulture);

    private RedisConfiguration Tls(Action<RedisConfiguration>? tweak = null)
    {
        RedisConfiguration configuration = RedisConfiguration.Parse($"127.0.0.1:{_tlsPort},ssl=true");
        configuration.ConnectTimeout = TimeSpan.FromSeconds(5);
        configuration.ReconnectBaseDelay = TimeSpan.FromMilliseconds(50);
        configuration.ReconnectMaxDelay = TimeSpan.FromMilliseconds(500);
        tweak?.Invoke(configuration);
        return configuration;
    }

    private static X509Certificate2 CreateSelfSignedCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=cacheguard-test-redis", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        DateTimeOffset now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
    }
}
