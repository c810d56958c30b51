using Microsoft.Extensions.Internal;

namespace CacheGuard.Internal;

/// <summary>Lets <c>MemoryCache</c>, which reads an <see cref="ISystemClock"/>, run on the injected <see cref="TimeProvider"/>.</summary>
internal sealed class TimeProviderClock(TimeProvider time) : ISystemClock
{
    public DateTimeOffset UtcNow => time.GetUtcNow();
}
