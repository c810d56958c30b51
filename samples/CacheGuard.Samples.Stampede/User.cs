namespace CacheGuard.Samples.Stampede;

/// <summary>A row of the simulated database's users table.</summary>
internal sealed record User(int Id, string Name);
