namespace CacheGuard.Benchmarks;

/// <summary>
/// An ordinary mutable class, the kind of value applications cache: a cache that must copy or deserialize it on
/// every hit to stay safe pays for that here. About 200 bytes as JSON.
/// </summary>
public sealed class Product
{
    public int Id { get; set; }

    public string Sku { get; set; } = string.Empty;

    public string Name { get; set; } = string.Empty;

    public string Description { get; set; } = string.Empty;

    public decimal Price { get; set; }

    public int Stock { get; set; }

    public DateTimeOffset UpdatedUtc { get; set; }

    public static Product Create(int id) => new()
    {
        Id = id,
        Sku = $"SKU-{id:D8}",
        Name = $"Product {id}",
        Description = "A sturdy, ordinary product whose description is long enough to look like real data.",
        Price = 19.99m + id,
        Stock = id % 1000,
        UpdatedUtc = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero),
    };
}

/// <summary>
/// An immutable value: a sealed record marked <see cref="System.ComponentModel.ImmutableObjectAttribute"/>, which is
/// what HybridCache's documentation asks for before it hands out the cached instance instead of a copy.
/// </summary>
[System.ComponentModel.ImmutableObject(true)]
public sealed record ProductRecord(int Id, string Sku, string Name, decimal Price)
{
    public static ProductRecord Create(int id) => new(id, $"SKU-{id:D8}", $"Product {id}", 19.99m + id);
}

/// <summary>A small value type: a cache that boxes or copies it on a hit pays for that here.</summary>
public readonly record struct StockLevel(int ProductId, int Available, long Version);
