namespace CacheGuard.DocsSnippets;

// The types the snippets talk about: a product, a user, a report, and their data sources.
public sealed record Product(int Id, string Name);

public sealed record User(int Id, string Name);

public sealed record Report(string Month);

public class ProductDb
{
    public Task<Product?> FindAsync(int id, CancellationToken cancellationToken) => Task.FromResult<Product?>(new Product(id, $"product-{id}"));

    public Task RenameAsync(int id, string name, CancellationToken cancellationToken) => Task.CompletedTask;
}

public class UserDb
{
    public Task<User?> FindUserAsync(int id, CancellationToken cancellationToken) => Task.FromResult<User?>(new User(id, $"user-{id}"));
}
