using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CacheGuard.Ecosystem.Tests;

public class ConfigurationTests
{
    private static IConfiguration Config(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => KeyValuePair.Create(v.Key, v.Value))).Build();

    [Test]
    public void EveryKindOfOption_BindsFromTheSection()
    {
        IConfiguration config = Config(
            ("CacheGuard:DefaultExpiration", "00:10:00"),
            ("CacheGuard:DefaultLocalExpiration", "00:00:30"),
            ("CacheGuard:JitterRatio", "0.25"),
            ("CacheGuard:NegativeExpiration", "00:00:05"),
            ("CacheGuard:KeyPrefix", "orders-api:"),
            ("CacheGuard:MaxKeyLength", "200"),
            ("CacheGuard:SizeLimit", "5000"),
            ("CacheGuard:IncludeKeysInTelemetry", "true"),
            ("Unrelated:Setting", "ignored"));
        var services = new ServiceCollection();
        services.AddCoalescingCache(config.GetSection("CacheGuard"));
        using ServiceProvider provider = services.BuildServiceProvider();

        CoalescingCacheOptions o = provider.GetRequiredService<IOptions<CoalescingCacheOptions>>().Value;

        Assert.Multiple(() =>
        {
            Assert.That(o.DefaultExpiration, Is.EqualTo(TimeSpan.FromMinutes(10)));
            Assert.That(o.DefaultLocalExpiration, Is.EqualTo(TimeSpan.FromSeconds(30)));
            Assert.That(o.JitterRatio, Is.EqualTo(0.25));
            Assert.That(o.NegativeExpiration, Is.EqualTo(TimeSpan.FromSeconds(5)));
            Assert.That(o.KeyPrefix, Is.EqualTo("orders-api:"));
            Assert.That(o.MaxKeyLength, Is.EqualTo(200));
            Assert.That(o.SizeLimit, Is.EqualTo(5000));
            Assert.That(o.IncludeKeysInTelemetry, Is.True);
        });
        Assert.That(provider.GetRequiredService<ICoalescingCache>(), Is.Not.Null);
    }

    [Test]
    public void AnInvalidValue_FailsWithAMessageNamingTheConfigurationPath()
    {
        IConfiguration config = Config(("CacheGuard:DefaultExpiration", "-00:00:01"), ("CacheGuard:JitterRatio", "3"));
        var services = new ServiceCollection();
        services.AddCoalescingCache(config.GetSection("CacheGuard"));
        using ServiceProvider provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<ICoalescingCache>());

        Assert.That(error!.Failures, Has.Some.StartsWith("CacheGuard:DefaultExpiration (CoalescingCacheOptions.DefaultExpiration) must be greater than zero"));
        Assert.That(error.Failures, Has.Some.StartsWith("CacheGuard:JitterRatio (CoalescingCacheOptions.JitterRatio) must be between 0 and 1"));
    }

    [Test]
    public void ANamedCacheFromANestedSection_NamesItsOwnPath()
    {
        IConfiguration config = Config(("CacheGuard:Caches:users:MaxKeyLength", "0"));
        var services = new ServiceCollection();
        services.AddCoalescingCache("users", config.GetSection("CacheGuard:Caches:users"));
        using ServiceProvider provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredKeyedService<ICoalescingCache>("users"));

        Assert.That(error!.Failures, Has.One.StartsWith("CacheGuard:Caches:users:MaxKeyLength (CoalescingCacheOptions.MaxKeyLength) must be at least 1"));
    }

    [Test]
    public void OptionsSetInCode_KeepTheirPropertyNamesInMessages()
    {
        IConfiguration config = Config(("CacheGuard:KeyPrefix", "a:"));
        var services = new ServiceCollection();
        services.AddCoalescingCache(config.GetSection("CacheGuard"));
        services.AddCoalescingCache("users", o => o.MaxKeyLength = 0);
        using ServiceProvider provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredKeyedService<ICoalescingCache>("users"));

        Assert.That(error!.Failures, Has.One.StartsWith("CoalescingCacheOptions.MaxKeyLength must be at least 1"));
    }

    [Test]
    public void AMisspeltOption_IsAnError_NamingTheKey()
    {
        IConfiguration config = Config(("CacheGuard:DefaultExpiraton", "00:10:00"));
        var services = new ServiceCollection();
        services.AddCoalescingCache(config.GetSection("CacheGuard"));
        using ServiceProvider provider = services.BuildServiceProvider();

        var error = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<ICoalescingCache>());

        Assert.That(error!.Message, Does.Contain("DefaultExpiraton"));
    }

    [Test]
    public void AValueOfTheWrongType_IsAnError_NamingThePath()
    {
        IConfiguration config = Config(("CacheGuard:DefaultExpiration", "ten minutes"));
        var services = new ServiceCollection();
        services.AddCoalescingCache(config.GetSection("CacheGuard"));
        using ServiceProvider provider = services.BuildServiceProvider();

        var error = Assert.Throws<InvalidOperationException>(() => provider.GetRequiredService<ICoalescingCache>());

        Assert.That(error!.Message, Does.Contain("CacheGuard:DefaultExpiration"));
    }

    [Test]
    public void TheDelegate_RunsAfterBinding_AndANamedCacheKeepsItsDefaultsUnlessTheSectionSetsThem()
    {
        IConfiguration config = Config(("Users:DefaultExpiration", "00:01:00"), ("Orders:KeyPrefix", "o/"));
        var services = new ServiceCollection();
        services.AddCoalescingCache("users", config.GetSection("Users"), o => o.DefaultExpiration = TimeSpan.FromMinutes(2));
        services.AddCoalescingCache("orders", config.GetSection("Orders"));
        using ServiceProvider provider = services.BuildServiceProvider();
        var options = provider.GetRequiredService<IOptionsMonitor<CoalescingCacheOptions>>();

        Assert.That(options.Get("users").DefaultExpiration, Is.EqualTo(TimeSpan.FromMinutes(2)));
        Assert.That(options.Get("users").KeyPrefix, Is.Empty, "a named cache has a key space of its own; KeyPrefix stays the user's");
        Assert.That(options.Get("orders").KeyPrefix, Is.EqualTo("o/"));
    }
}
