namespace CacheGuard.Tests.Support;

/// <summary>Assertions on calls that end asynchronously.</summary>
public static class Expect
{
    /// <summary>
    /// Waits (guarded against hangs) until <paramref name="call"/> has ended, then asserts it failed with
    /// <typeparamref name="TException"/>. A call that hangs is reported as hanging, never mistaken for a
    /// <see cref="TimeoutException"/> from a guard such as <c>WaitAsync(TimeSpan)</c>.
    /// </summary>
    public static async Task<TException> ThrowsAsync<TException>(Task call, string? message = null)
        where TException : Exception
    {
        await TestCaches.Until(() => call.IsCompleted, "the call ends");
        return Assert.ThrowsAsync<TException>(async () => await call, message ?? $"Expected {typeof(TException).Name}.")!;
    }
}
