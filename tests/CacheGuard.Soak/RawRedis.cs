using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace CacheGuard.Soak;

/// <summary>
/// The fault injector's own Redis client, deliberately independent of the client under test: one short-lived socket
/// per command, RESP2 arrays of bulk strings out, one reply in. Used for PING (readiness), FLUSHALL, CLIENT KILL and
/// writing corrupt entries, never on the cache's path.
/// </summary>
internal static class RawRedis
{
    /// <summary>Sends one command and returns its reply as text (<c>+OK</c>, <c>:3</c>, a bulk string, or <c>-ERR ...</c>).</summary>
    /// <exception cref="IOException">The server did not answer within <paramref name="timeout"/> or closed the socket.</exception>
    public static async Task<string> ExecuteAsync(int port, TimeSpan timeout, params object[] arguments) =>
        (await ExecuteRawAsync(port, timeout, arguments)).Text;

    /// <summary>Sends one command; a bulk reply comes back as its bytes too (binary values, e.g. an L2 entry's data).</summary>
    /// <exception cref="IOException">The server did not answer within <paramref name="timeout"/> or closed the socket.</exception>
    public static async Task<(string Text, byte[]? Bulk)> ExecuteRawAsync(int port, TimeSpan timeout, params object[] arguments)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            using var client = new TcpClient { NoDelay = true };
            await client.ConnectAsync("127.0.0.1", port, cancel.Token);
            NetworkStream stream = client.GetStream();
            await stream.WriteAsync(Encode(arguments), cancel.Token);
            return await ReadReplyAsync(stream, cancel.Token);
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            throw new IOException($"redis on 127.0.0.1:{port} did not answer '{arguments[0]}' within {timeout.TotalMilliseconds:0} ms.");
        }
        catch (SocketException ex)
        {
            throw new IOException($"redis on 127.0.0.1:{port} refused '{arguments[0]}': {ex.Message}", ex);
        }
    }

    /// <summary>Whether the server answers PING within <paramref name="timeout"/> (any reply counts).</summary>
    public static async Task<bool> PingAsync(int port, TimeSpan timeout)
    {
        try
        {
            string reply = await ExecuteAsync(port, timeout, "PING");
            return reply.Length > 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static byte[] Encode(object[] arguments)
    {
        using var buffer = new MemoryStream();
        Write(buffer, $"*{arguments.Length}\r\n");
        foreach (object argument in arguments)
        {
            byte[] bytes = argument switch
            {
                byte[] raw => raw,
                string text => Encoding.UTF8.GetBytes(text),
                IFormattable number => Encoding.UTF8.GetBytes(number.ToString(null, CultureInfo.InvariantCulture)),
                _ => throw new ArgumentException($"Unsupported argument type {argument.GetType()}.", nameof(arguments)),
            };
            Write(buffer, $"${bytes.Length}\r\n");
            buffer.Write(bytes);
            Write(buffer, "\r\n");
        }

        return buffer.ToArray();

        static void Write(MemoryStream stream, string text) => stream.Write(Encoding.ASCII.GetBytes(text));
    }

    private static async Task<(string Text, byte[]? Bulk)> ReadReplyAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        string line = await ReadLineAsync(stream, cancellationToken);
        if (line.Length == 0 || line[0] != '$')
        {
            return (line, null); // +simple, -error, :integer (arrays are not used by the injector)
        }

        int length = int.Parse(line.AsSpan(1), CultureInfo.InvariantCulture);
        if (length < 0)
        {
            return ("(nil)", null);
        }

        byte[] body = new byte[length + 2];
        await stream.ReadExactlyAsync(body, cancellationToken);
        return (Encoding.UTF8.GetString(body, 0, length), body[..length]);
    }

    private static async Task<string> ReadLineAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var line = new StringBuilder();
        byte[] one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0)
            {
                throw new IOException("redis closed the connection before replying.");
            }

            if (one[0] == '\n')
            {
                return line.ToString().TrimEnd('\r');
            }

            line.Append((char)one[0]);
        }
    }
}
