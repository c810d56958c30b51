using CacheGuard.Redis.Internal;

namespace CacheGuard.Redis;

/// <summary>
/// A command and its arguments, encoded to RESP once when constructed, so it can be sent any number of times
/// (keep fixed commands such as <c>PING</c> in a <see langword="static readonly"/> field).
/// </summary>
/// <example><code>
/// var acquire = new RedisCommand("SET", "lock:orders", token, "NX", "PX", 30_000);
/// RedisResult reply = await connection.ExecuteAsync(acquire);
/// bool acquired = !reply.IsNull;
/// </code></example>
public sealed class RedisCommand
{
    private readonly byte[] _encoded;

    /// <summary>Initializes a new instance of the <see cref="RedisCommand"/> class.</summary>
    /// <param name="name">The command name, for example <c>SET</c> or <c>EVALSHA</c>.</param>
    /// <param name="arguments">The arguments, each sent as one binary-safe bulk string.</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or whitespace.</exception>
    public RedisCommand(string name, params ReadOnlySpan<RedisArgument> arguments)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        ArgumentCount = arguments.Length;
        using var writer = new PooledBufferWriter(256);
        Resp.WriteArrayHeader(writer, arguments.Length + 1);
        Resp.WriteBulk(writer, name);
        foreach (RedisArgument argument in arguments)
        {
            argument.WriteTo(writer);
        }

        _encoded = writer.WrittenSpan.ToArray();
    }

    /// <summary>Gets the command name.</summary>
    /// <value>The name given to the constructor.</value>
    public string Name { get; }

    /// <summary>Gets the number of arguments after the name.</summary>
    /// <value>The argument count.</value>
    public int ArgumentCount { get; }

    internal ReadOnlySpan<byte> Encoded => _encoded;

    /// <summary>Returns the command name and argument count, never the arguments (they may be secrets).</summary>
    /// <returns>For example <c>SET (5 arguments)</c>.</returns>
    public override string ToString() => $"{Name} ({ArgumentCount} arguments)";
}
