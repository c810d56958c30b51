using CacheGuard.Tests.Support;

namespace CacheGuard.Tests;

/// <summary>One key, two types: never wrong data, never an InvalidCastException; a clear error naming both.</summary>
public class TypeSafetyTests
{
    [Test]
    public async Task SameKeyAnotherType_InL1_ThrowsNamingTheKeyAndBothTypes()
    {
        using var cache = TestCaches.Create(o => o.IncludeKeysInTelemetry = true);
        await cache.SetAsync("k", "a string");

        var ex = Assert.Throws<CacheTypeMismatchException>(() => _ = cache.GetOrLoadAsync("k", _ => Task.FromResult(1)));

        Assert.That(ex!.Key, Is.EqualTo("k"));
        Assert.That(ex.CachedType, Is.EqualTo(typeof(string)));
        Assert.That(ex.RequestedType, Is.EqualTo(typeof(int)));
        Assert.That(ex.Message, Does.Contain("'k'").And.Contain("System.String").And.Contain("System.Int32"));
    }

    [Test]
    public async Task SameKeyAnotherType_WhileLoading_Throws()
    {
        using var cache = TestCaches.Create();
        var loader = new TestCaches.GatedLoader<string>();
        var loading = cache.GetOrLoadAsync("k", loader.Load).AsTask();

        var ex = Assert.Throws<CacheTypeMismatchException>(() => _ = cache.GetOrLoadAsync("k", _ => Task.FromResult(1)));
        Assert.That(ex!.CachedType, Is.EqualTo(typeof(string)));

        loader.Gate.SetResult("done");
        Assert.That(await loading, Is.EqualTo("done"));
    }

    [Test]
    public async Task SameKeyAnotherType_InL2_IsAMiss_NeverWrongData()
    {
        var l2 = new FakeDistributedCache();
        using (var writer = TestCaches.Create(l2: l2))
        {
            await writer.SetAsync("k", new Celsius(21.5));
        }

        var logs = new LogCapture();
        using var reader = TestCaches.Create(l2: l2, logs: logs);
        var value = await reader.GetOrLoadAsync("k", _ => Task.FromResult(new Fahrenheit(70.7)));

        Assert.That(value, Is.EqualTo(new Fahrenheit(70.7)), "A Celsius payload must not be read as Fahrenheit, although the JSON would fit.");
        Assert.That(logs.Entries.Single(e => e.Id.Id == CacheGuard.Internal.Log.L2PayloadRejectedId).Message, Does.Contain("another type"));
    }

    [Test]
    public async Task NullableAndNonNullableReferenceTypes_ShareTheKey()
    {
        using var cache = TestCaches.Create();
        await cache.SetAsync<string?>("k", "v");

        Assert.That(await cache.GetOrLoadAsync<string>("k", _ => Task.FromResult("other")), Is.EqualTo("v"));
    }

    public sealed record Celsius(double Degrees);

    public sealed record Fahrenheit(double Degrees);
}
