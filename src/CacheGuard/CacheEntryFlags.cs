namespace CacheGuard;

/// <summary>Per-call switches that turn parts of the read-through path off. Same names and meaning as HybridCache's flags.</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "Mirrors HybridCacheEntryFlags, so users of both see one name.")]
public enum CacheEntryFlags
{
    /// <summary>Every level is read and written.</summary>
    None = 0,

    /// <summary>Do not read the in-process cache (L1).</summary>
    DisableLocalCacheRead = 1 << 0,

    /// <summary>Do not write the in-process cache (L1).</summary>
    DisableLocalCacheWrite = 1 << 1,

    /// <summary>Neither read nor write the in-process cache (L1).</summary>
    DisableLocalCache = DisableLocalCacheRead | DisableLocalCacheWrite,

    /// <summary>Do not read the distributed cache (L2).</summary>
    DisableDistributedCacheRead = 1 << 2,

    /// <summary>Do not write the distributed cache (L2).</summary>
    DisableDistributedCacheWrite = 1 << 3,

    /// <summary>Neither read nor write the distributed cache (L2).</summary>
    DisableDistributedCache = DisableDistributedCacheRead | DisableDistributedCacheWrite,

    /// <summary>Do not call the loader: on a miss the call returns <see langword="default"/> and nothing is cached.</summary>
    DisableUnderlyingData = 1 << 4,
}
