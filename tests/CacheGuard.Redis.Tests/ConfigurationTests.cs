using CacheGuard.Redis.Internal;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace CacheGuard.Redis.Tests;

/// <summary>A bad configuration string fails at registration, naming the bad part and never a password.</summary>
public class ConfigurationTests
{
    [TestCase("127.0.0.1:notaport", "'127.0.0.1:notaport'")]
    [TestCase("localhost:70000", "'localhost:70000'")]
    [TestCase("localhost:0", "'localhost:0'")]
    [TestCase(":6379", "':6379'")]
    [TestCase("[::1:6379", "'[::1:6379'")]
    [TestCase("bad host:6379", "'bad host:6379'")]
    [TestCase("localhost,connectTimeout=fast", "'connectTimeout'")]
    [TestCase("localhost,abortConnect=perhaps", "'abortConnect'")]
    [TestCase("localhost,frobnicate=1", "'frobnicate'")]
    [TestCase("password=only", "no endpoint")]
    [TestCase("   ", "empty")]
    [TestCase("redis://localhost:6379", "URI")]
    public void WithRedis_InvalidString_ThrowsAtRegistration_NamingTheBadPart(string configuration, string named)
    {
        var services = new ServiceCollection();
        var ex = Assert.Throws<ArgumentException>(() => services.AddCoalescingCache().WithRedis(configuration));
        Assert.That(ex!.Message, Does.Contain(named));
        Assert.That(ex.ParamName, Is.EqualTo("configuration"));
    }

    [TestCase("localhost:6379")]
    [TestCase("localhost")]
    [TestCase("cache.example.com:6390, replica-1:6391,password=p@ss=word,user=alice,ssl=true,sslHost=redis.example.com,defaultDatabase=2,connectTimeout=1500,asyncTimeout=2000,name=orders-api,abortConnect=false,keepAlive=30,allowAdmin=true,connectRetry=3")]
    [TestCase("[::1]:6379")]
    [TestCase("::1")]
    [TestCase("10.0.0.1:6379,10.0.0.2:6379,serviceName=mymaster")]
    public void WithRedis_ValidString_IsAccepted(string configuration)
    {
        var services = new ServiceCollection();
        Assert.DoesNotThrow(() => services.AddCoalescingCache().WithRedis(configuration));
    }

    [Test]
    public void InvalidString_NeverQuotesAPassword()
    {
        var misspelt = Assert.Throws<ArgumentException>(() => RedisConfigurationText.Parse("localhost,pasword=hunter2", "configuration"));
        var commaInPassword = Assert.Throws<ArgumentException>(() => RedisConfigurationText.Parse("localhost,password=hunter2,xyzzy!", "configuration"));
        var uri = Assert.Throws<ArgumentException>(() => RedisConfigurationText.Parse("redis://bob:hunter2@localhost", "configuration"));
        Assert.Multiple(() =>
        {
            Assert.That(misspelt!.Message, Does.Contain("'pasword'").And.Not.Contain("hunter2"));
            Assert.That(commaInPassword!.Message, Does.Contain("after 'password='").And.Not.Contain("xyzzy").And.Not.Contain("hunter2"));
            Assert.That(uri!.Message, Does.Contain("URI").And.Not.Contain("hunter2"));
        });
    }

    [Test]
    public void OwnedMultiplexers_GetCacheGuardsDefaults_FailFastNoAbortQuickReconnect()
    {
        ConfigurationOptions options = RedisConnections.ApplyDefaults(ConfigurationOptions.Parse("localhost,abortConnect=true"));
        Assert.Multiple(() =>
        {
            Assert.That(options.BacklogPolicy, Is.SameAs(BacklogPolicy.FailFast));
            Assert.That(options.AbortOnConnectFail, Is.False);
            Assert.That(options.ReconnectRetryPolicy, Is.InstanceOf<ExponentialRetry>());
            Assert.That(options.ReconnectRetryPolicy.ShouldRetry(100, 2_000), Is.True, "a retry at least every 2 s, however long the outage");
        });
    }

    [Test]
    public void Describe_ListsEndpointsOnly()
    {
        string described = RedisConfigurationText.Describe(ConfigurationOptions.Parse("a.example:1,b.example:2,password=hunter2,user=bob"));
        Assert.That(described, Is.EqualTo("a.example:1,b.example:2"));
    }
}
