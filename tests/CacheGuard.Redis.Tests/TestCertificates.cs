using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace CacheGuard.Redis.Tests;

/// <summary>A private certificate authority made for one test run, and a server certificate it signed for 127.0.0.1 and localhost.</summary>
internal sealed class TestCertificates : IDisposable
{
    private TestCertificates(X509Certificate2 authority, X509Certificate2 server)
    {
        Authority = authority;
        Server = server;
    }

    /// <summary>Gets the self-signed CA (public part only is used by clients).</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>Gets the server certificate, with its private key.</summary>
    public X509Certificate2 Server { get; }

    public string AuthorityPem => Authority.ExportCertificatePem();

    public string ServerPem => Server.ExportCertificatePem();

    public string ServerKeyPem
    {
        get
        {
            using ECDsa key = Server.GetECDsaPrivateKey()!;
            return key.ExportPkcs8PrivateKeyPem();
        }
    }

    public static TestCertificates Create()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using var authorityKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var authorityRequest = new CertificateRequest("CN=cacheguard-test-ca", authorityKey, HashAlgorithmName.SHA256);
        authorityRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        authorityRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        authorityRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(authorityRequest.PublicKey, critical: false));
        X509Certificate2 authority = authorityRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(2));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var serverRequest = new CertificateRequest("CN=cacheguard-test-redis", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        serverRequest.CertificateExtensions.Add(names.Build());
        serverRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        serverRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        serverRequest.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        using X509Certificate2 signed = serverRequest.Create(authority, now.AddMinutes(-5), now.AddDays(1), serial);
        X509Certificate2 server = signed.CopyWithPrivateKey(serverKey);
        return new TestCertificates(authority, server);
    }

    public void Dispose()
    {
        Authority.Dispose();
        Server.Dispose();
    }
}
