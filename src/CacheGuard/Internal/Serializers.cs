using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Caching.Hybrid;
using Microsoft.Extensions.DependencyInjection;

namespace CacheGuard.Internal;

/// <summary>
/// Finds the serializer for each value type, once: a registered <see cref="IHybridCacheSerializer{T}"/>, else the first
/// registered <see cref="IHybridCacheSerializerFactory"/> (most recent first) that accepts the type, else the built-in
/// one (raw bytes for <see cref="byte"/>[], UTF-8 for <see cref="string"/>, System.Text.Json for the rest).
/// </summary>
internal sealed class SerializerRegistry(IServiceProvider? services)
{
    private readonly ConcurrentDictionary<Type, object> _serializers = new();
    private readonly IHybridCacheSerializerFactory[] _factories = services?.GetServices<IHybridCacheSerializerFactory>().Reverse().ToArray() ?? [];

    public IHybridCacheSerializer<T> Get<T>()
    {
        if (_serializers.TryGetValue(typeof(T), out object? found))
        {
            return (IHybridCacheSerializer<T>)found;
        }

        return (IHybridCacheSerializer<T>)_serializers.GetOrAdd(typeof(T), Create<T>());
    }

    private IHybridCacheSerializer<T> Create<T>()
    {
        if (services?.GetService<IHybridCacheSerializer<T>>() is { } registered)
        {
            return registered;
        }

        foreach (IHybridCacheSerializerFactory factory in _factories)
        {
            if (factory.TryCreateSerializer(out IHybridCacheSerializer<T>? created) && created is not null)
            {
                return created;
            }
        }

        if (typeof(T) == typeof(byte[]))
        {
            return (IHybridCacheSerializer<T>)(object)BytesSerializer.Instance;
        }

        if (typeof(T) == typeof(string))
        {
            return (IHybridCacheSerializer<T>)(object)Utf8StringSerializer.Instance;
        }

        return JsonSerializer<T>.Instance;
    }

    private sealed class BytesSerializer : IHybridCacheSerializer<byte[]>
    {
        public static readonly BytesSerializer Instance = new();

        public byte[] Deserialize(ReadOnlySequence<byte> source) => source.ToArray();

        public void Serialize(byte[] value, IBufferWriter<byte> target) => target.Write(value);
    }

    private sealed class Utf8StringSerializer : IHybridCacheSerializer<string>
    {
        public static readonly Utf8StringSerializer Instance = new();

        public string Deserialize(ReadOnlySequence<byte> source) => Encoding.UTF8.GetString(source);

        public void Serialize(string value, IBufferWriter<byte> target) => Encoding.UTF8.GetBytes(value, target);
    }

    private sealed class JsonSerializer<T> : IHybridCacheSerializer<T>
    {
        public static readonly JsonSerializer<T> Instance = new();

        public T Deserialize(ReadOnlySequence<byte> source)
        {
            if (source.IsSingleSegment)
            {
                // One pass over a span: the reader-based overload scans the value once to find its end, then parses it.
                return JsonSerializer.Deserialize<T>(source.FirstSpan)!;
            }

            var reader = new Utf8JsonReader(source);
            return JsonSerializer.Deserialize<T>(ref reader)!;
        }

        public void Serialize(T value, IBufferWriter<byte> target)
        {
            using var writer = new Utf8JsonWriter(target);
            JsonSerializer.Serialize(writer, value);
        }
    }
}
