using Microsoft.Extensions.Caching.Memory;

namespace CacheGuard.Benchmarks;

/// <summary>
/// A reference for the miss benchmark, not a library: the least a read-through cache with one load per key must do on a
/// miss, cache-aside over <see cref="MemoryCache"/> plus a working singleflight (a striped lock, a map of flights, one
/// record per load, a wait task only when someone joins). No per-key versions (so a load that an invalidation overtook
/// could land), no timeouts, no fail-safe, no L2: what it costs beside raw is the floor any singleflight pays.
/// </summary>
internal sealed class BareSingleFlight<T>(MemoryCache memory, TimeSpan lifetime)
    where T : class
{
    private const int Stripes = 32;

    private readonly Stripe[] _stripes = Enumerable.Range(0, Stripes).Select(_ => new Stripe()).ToArray();

    public ValueTask<T> GetOrLoadAsync(string key, Func<string, Task<T>> loader)
    {
        if (memory.TryGetValue(key, out T? cached))
        {
            return new ValueTask<T>(cached!);
        }

        Stripe stripe = _stripes[StringComparer.Ordinal.GetHashCode(key) & (Stripes - 1)];
        Flight flight;
        lock (stripe.Gate)
        {
            if (stripe.Flights.TryGetValue(key, out Flight? running))
            {
                return new ValueTask<T>((running.Joined ??= new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously)).Task);
            }

            flight = new Flight();
            stripe.Flights.Add(key, flight);
        }

        Task<T> loading = loader(key);
        return loading.IsCompletedSuccessfully ? new ValueTask<T>(Finish(stripe, key, flight, loading.Result)) : new ValueTask<T>(FinishAsync(stripe, key, flight, loading));
    }

    private async Task<T> FinishAsync(Stripe stripe, string key, Flight flight, Task<T> loading) => Finish(stripe, key, flight, await loading.ConfigureAwait(false));

    private T Finish(Stripe stripe, string key, Flight flight, T value)
    {
        memory.Set(key, value, lifetime);
        TaskCompletionSource<T>? joined;
        lock (stripe.Gate)
        {
            stripe.Flights.Remove(key);
            joined = flight.Joined;
        }

        joined?.TrySetResult(value);
        return value;
    }

    private sealed class Flight
    {
        public TaskCompletionSource<T>? Joined; // guarded by the stripe's lock
    }

    private sealed class Stripe
    {
        public readonly Lock Gate = new();
        public readonly Dictionary<string, Flight> Flights = new(StringComparer.Ordinal);
    }
}
