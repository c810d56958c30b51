using System.Net;

namespace CacheGuard.Redis.Tests;

public class ConfigurationTests
{
    [Test]
    public void StackExchangeString_SetsEveryKey()
    {
        RedisConfiguration c = RedisConfiguration.Parse(
            "cache.example.com:6390, replica:6391,password=p@ss=word,user=alice,ssl=true,sslHost=redis.example.com,defaultDatabase=2," +
            "connectTimeout=1500,asyncTimeout=2000,name=orders-api,abortConnect=false,keepAlive=30,allowAdmin=true,connectRetry=3");

        Assert.Multiple(() =>
        {
            Assert.That(c.EndPoints, Is.EqualTo(new[] { new DnsEndPoint("cache.example.com", 6390), new DnsEndPoint("replica", 6391) }));
            Assert.That(c.Password, Is.EqualTo("p@ss=word"));
            Assert.That(c.User, Is.EqualTo("alice"));
            Assert.That(c.Ssl, Is.True);
            Assert.That(c.SslHost, Is.EqualTo("redis.example.com"));
            Assert.That(c.DefaultDatabase, Is.EqualTo(2));
            Assert.That(c.ConnectTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(1500)));
            Assert.That(c.AsyncTimeout, Is.EqualTo(TimeSpan.FromSeconds(2)));
            Assert.That(c.ClientName, Is.EqualTo("orders-api"));
            Assert.That(c.AbortOnConnectFail, Is.False);
            Assert.That(c.KeepAlive, Is.EqualTo(TimeSpan.FromSeconds(30)));
        });
    }

    [Test]
    public void StackExchangeString_DefaultsPortsLikeStackExchangeRedis()
    {
        Assert.Multiple(() =>
        {
            Assert.That(RedisConfiguration.Parse("localhost").EndPoints[0].Port, Is.EqualTo(6379));
            Assert.That(RedisConfiguration.Parse("localhost,ssl=true").EndPoints[0].Port, Is.EqualTo(6380));
            Assert.That(RedisConfiguration.Parse("[::1]:7000").EndPoints[0], Is.EqualTo(new DnsEndPoint("::1", 7000)));
            Assert.That(RedisConfiguration.Parse("localhost,syncTimeout=700").AsyncTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(700)));
        });
    }

    [Test]
    public void Uri_SetsUserPasswordDatabaseAndTls()
    {
        RedisConfiguration c = RedisConfiguration.Parse("rediss://bob:s%40cret@redis.internal:6390/3?name=worker&asyncTimeout=900");
        Assert.Multiple(() =>
        {
            Assert.That(c.EndPoints.Single(), Is.EqualTo(new DnsEndPoint("redis.internal", 6390)));
            Assert.That(c.User, Is.EqualTo("bob"));
            Assert.That(c.Password, Is.EqualTo("s@cret"));
            Assert.That(c.Ssl, Is.True);
            Assert.That(c.DefaultDatabase, Is.EqualTo(3));
            Assert.That(c.ClientName, Is.EqualTo("worker"));
            Assert.That(c.AsyncTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(900)));
        });

        RedisConfiguration plain = RedisConfiguration.Parse("redis://:onlypass@localhost");
        Assert.Multiple(() =>
        {
            Assert.That(plain.User, Is.Null);
            Assert.That(plain.Password, Is.EqualTo("onlypass"));
            Assert.That(plain.Ssl, Is.False);
            Assert.That(plain.EndPoints.Single().Port, Is.EqualTo(6379));
        });
    }

    [TestCase("localhost:abc", "'localhost:abc'")]
    [TestCase("localhost:70000", "'localhost:70000'")]
    [TestCase("localhost,connectTimeout=fast", "'connectTimeout=fast'")]
    [TestCase("localhost,ssl=maybe", "'ssl=maybe'")]
    [TestCase("localhost,defaultDatabase=-1", "'defaultDatabase=-1'")]
    [TestCase("localhost,frobnicate=1", "'frobnicate'")]
    [TestCase("localhost,protocol=resp3", "'protocol=resp3'")]
    [TestCase("localhost,serviceName=mymaster", "'serviceName'")]
    [TestCase("redis://localhost/notanumber", "'/notanumber'")]
    public void InvalidString_ThrowsQuotingTheOffendingPart(string configuration, string quoted)
    {
        var ex = Assert.Throws<ArgumentException>(() => RedisConfiguration.Parse(configuration));
        Assert.That(ex!.Message, Does.Contain(quoted));
    }

    [Test]
    public void InvalidString_NeverQuotesAPassword()
    {
        var misspelt = Assert.Throws<ArgumentException>(() => RedisConfiguration.Parse("localhost,pasword=hunter2"));
        var badUri = Assert.Throws<ArgumentException>(() => RedisConfiguration.Parse("redis://bob:hunter2@/0"));
        Assert.Multiple(() =>
        {
            Assert.That(misspelt!.Message, Does.Contain("'pasword'").And.Not.Contain("hunter2"));
            Assert.That(badUri!.Message, Does.Not.Contain("hunter2"));
        });
    }

    [Test]
    public void UnknownKeyword_IsAcceptedWithIgnoreUnknown()
    {
        RedisConfiguration c = RedisConfiguration.Parse("localhost,ignoreUnknown=true,frobnicate=1");
        Assert.That(c.EndPoints.Single().Host, Is.EqualTo("localhost"));
    }

    [Test]
    public void ToString_RedactsThePassword()
    {
        string text = RedisConfiguration.Parse("localhost:6379,password=hunter2,user=alice").ToString();
        Assert.That(text, Does.Contain("password=*****").And.Contain("user=alice").And.Not.Contain("hunter2"));
    }

    [Test]
    public void Clone_IsIndependent()
    {
        RedisConfiguration original = RedisConfiguration.Parse("a:1,password=x");
        RedisConfiguration clone = original.Clone();
        clone.EndPoints.Add(new DnsEndPoint("b", 2));
        clone.Password = "y";
        Assert.Multiple(() =>
        {
            Assert.That(original.EndPoints, Has.Count.EqualTo(1));
            Assert.That(original.Password, Is.EqualTo("x"));
        });
    }
}
