using System.Buffers.Binary;
using CacheGuard.Internal;
using Microsoft.Extensions.Caching.Hybrid;

namespace CacheGuard.Tests;

public class EnvelopeTests
{
    private static readonly IHybridCacheSerializer<string> Strings = new SerializerRegistry(null).Get<string>();

    private static byte[] Write(EnvelopeHeader header, string? value, IReadOnlyList<string>? tags = null)
    {
        using var buffer = new PooledBufferWriter();
        Envelope.Write(buffer, header, value!, header.NotFound ? null : Strings, tags);
        return buffer.ToArray();
    }

    [Test]
    public void RoundTrip_KeepsEveryField()
    {
        var header = new EnvelopeHeader(CreatedTicks: 111, ExpiresTicks: 222, LoadDurationTicks: 333, TypeTag: TypeTag<string>.Value, NotFound: false);
        byte[] bytes = Write(header, "héllo", ["tag-a", "tag-ü"]);

        Assert.That(Envelope.TryRead(bytes, out var read, out var payload, out var tags), Is.EqualTo(EnvelopeStatus.Ok));
        Assert.That(read, Is.EqualTo(header));
        Assert.That(tags, Is.EqualTo(new[] { "tag-a", "tag-ü" }));
        Assert.That(Strings.Deserialize(new(payload)), Is.EqualTo("héllo"));
    }

    [Test]
    public void NotFound_HasNoPayload()
    {
        var header = new EnvelopeHeader(1, 2, 0, TypeTag<string>.Value, NotFound: true);
        byte[] bytes = Write(header, null);

        Assert.That(bytes, Has.Length.EqualTo(Envelope.HeaderSize));
        Assert.That(Envelope.TryRead(bytes, out var read, out var payload, out _), Is.EqualTo(EnvelopeStatus.Ok));
        Assert.That(read.NotFound, Is.True);
        Assert.That(payload.Length, Is.Zero);
    }

    [Test]
    public void ALongerHeaderFromANewerWriter_IsSkipped()
    {
        byte[] v1 = Write(new EnvelopeHeader(1, 2, 3, 4, false), "value");

        // A later writer appends 8 bytes of fixed fields to the header: a v1 reader must skip them.
        byte[] extended = new byte[v1.Length + 8];
        v1.AsSpan(0, Envelope.HeaderSize).CopyTo(extended);
        v1.AsSpan(Envelope.HeaderSize).CopyTo(extended.AsSpan(Envelope.HeaderSize + 8));
        BinaryPrimitives.WriteUInt16LittleEndian(extended.AsSpan(4), Envelope.HeaderSize + 8);

        Assert.That(Envelope.TryRead(extended, out _, out var payload, out _), Is.EqualTo(EnvelopeStatus.Ok));
        Assert.That(Strings.Deserialize(new(payload)), Is.EqualTo("value"));
    }

    [Test]
    public void UnknownVersion_ForeignBytes_AndTruncation_AreRecognised()
    {
        byte[] good = Write(new EnvelopeHeader(1, 2, 3, 4, false), "value");
        byte[] future = (byte[])good.Clone();
        future[2] = 2;

        Assert.That(Envelope.TryRead(future, out _, out _, out _), Is.EqualTo(EnvelopeStatus.UnknownVersion));
        Assert.That(Envelope.TryRead("plain text"u8.ToArray(), out _, out _, out _), Is.EqualTo(EnvelopeStatus.Foreign));
        Assert.That(Envelope.TryRead(Array.Empty<byte>(), out _, out _, out _), Is.EqualTo(EnvelopeStatus.Foreign));
        Assert.That(Envelope.TryRead(good[..20], out _, out _, out _), Is.EqualTo(EnvelopeStatus.Corrupt));
        Assert.That(Envelope.TryRead(good[..^1], out _, out _, out _), Is.EqualTo(EnvelopeStatus.Corrupt));
        Assert.That(Envelope.TryRead(good.Append((byte)0).ToArray(), out _, out _, out _), Is.EqualTo(EnvelopeStatus.Corrupt));
    }

    [Test]
    public void TypeTags_AreStable_AndDistinguishTypes()
    {
        Assert.That(TypeTag<int>.Value, Is.Not.EqualTo(TypeTag<long>.Value));
        Assert.That(TypeTag<List<int>>.Value, Is.Not.EqualTo(TypeTag<List<long>>.Value));

        // FNV-1a 64 of "System.Int32" as UTF-16 code units: fixed forever, so payloads stay readable across versions.
        Assert.That(TypeTag<int>.Value, Is.EqualTo(Fnv("System.Int32")));
    }

    private static ulong Fnv(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s)
        {
            h = (h ^ c) * 1099511628211UL;
        }

        return h;
    }
}
