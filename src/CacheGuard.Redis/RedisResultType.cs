namespace CacheGuard.Redis;

/// <summary>The RESP2 type of a <see cref="RedisResult"/>.</summary>
public enum RedisResultType
{
    /// <summary>A status reply such as <c>+OK</c>.</summary>
    SimpleString,

    /// <summary>An error reply; only seen as an element of an array (a top-level error throws <see cref="RedisServerException"/>).</summary>
    Error,

    /// <summary>An integer reply.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "RESP names this reply type integer.")]
    Integer,

    /// <summary>A binary-safe bulk string.</summary>
    BulkString,

    /// <summary>An array of replies.</summary>
    Array,

    /// <summary>The null bulk string or null array (a missing key, a <c>SET ... NX</c> that did not set).</summary>
    Null,
}
