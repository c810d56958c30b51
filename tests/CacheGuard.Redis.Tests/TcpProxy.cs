using System.Net;
using System.Net.Sockets;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// A loopback TCP forwarder in front of a Redis server, so a test can cut one client's connections (the server keeps
/// running and keeps its data) and let them back in: a network partition of one node, without timing.
/// </summary>
internal sealed class TcpProxy : IAsyncDisposable
{
    private readonly int _target;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private readonly List<TcpClient> _open = [];
    private readonly Task _accepting;
    private volatile bool _cut;

    public TcpProxy(int targetPort)
    {
        _target = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptLoopAsync();
    }

    public int Port { get; }

    /// <summary>Closes every forwarded connection and refuses new ones (they are accepted and closed at once) until <see cref="Restore"/>.</summary>
    public void Cut()
    {
        _cut = true;
        lock (_lock)
        {
            foreach (TcpClient client in _open)
            {
                client.Close();
            }

            _open.Clear();
        }
    }

    /// <summary>Forwards new connections again.</summary>
    public void Restore() => _cut = false;

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Stop();
        Cut();
        try
        {
            await _accepting;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }

        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            TcpClient client = await _listener.AcceptTcpClientAsync(_stopping.Token);
            if (_cut)
            {
                client.Close();
                continue;
            }

            var upstream = new TcpClient();
            try
            {
                await upstream.ConnectAsync(IPAddress.Loopback, _target, _stopping.Token);
            }
            catch (SocketException)
            {
                client.Close();
                upstream.Dispose();
                continue;
            }

            lock (_lock)
            {
                _open.Add(client);
                _open.Add(upstream);
            }

            _ = PumpAsync(client, upstream);
            _ = PumpAsync(upstream, client);
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        byte[] buffer = new byte[16 * 1024];
        try
        {
            NetworkStream source = from.GetStream();
            NetworkStream destination = to.GetStream();
            while (true)
            {
                int read = await source.ReadAsync(buffer, _stopping.Token);
                if (read == 0)
                {
                    break;
                }

                await destination.WriteAsync(buffer.AsMemory(0, read), _stopping.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // One side closed (or the proxy cut it): close the other.
        }

        from.Close();
        to.Close();
    }
}
