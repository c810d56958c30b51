namespace CacheGuard.Samples.WebApi;

/// <summary>A user row.</summary>
internal sealed record User(int Id, string Name, string Email);

/// <summary>The body of <c>PUT /users/{id}</c>.</summary>
internal sealed record UserUpdate(string Name, string Email);
