using CacheGuard.Internal;

namespace CacheGuard.Tests.Support;

/// <summary>The ways a key's cached value is superseded on, or announced to, node A.</summary>
public enum Invalidation
{
    /// <summary><c>A.SetAsync(key, "v2")</c>.</summary>
    Set,

    /// <summary><c>A.RemoveAsync(key)</c>.</summary>
    Remove,

    /// <summary><c>A.RemoveByTagAsync("*")</c>.</summary>
    RemoveAll,

    /// <summary>Node B sets the key to "v2" and announces it on the backplane: A gets <c>OnInvalidation(key)</c>.</summary>
    Backplane,
}

/// <summary>
/// Node A under test, whose L2 calls go through a <see cref="ControlledDistributedCache"/>; node B on the same backplane;
/// a writer node that changes L2 without telling anyone; all over one L2 store and one fake clock.
/// </summary>
public sealed class Cluster : IDisposable
{
    private readonly Action<CoalescingCacheOptions>? _configure;
    private readonly List<IDisposable> _nodes = [];

    /// <param name="configure">Options for every node (jitter is off unless set).</param>
    /// <param name="lockOnA">Whether node A takes the distributed load lock (<see cref="Lock"/>) on an L2 miss.</param>
    internal Cluster(Action<CoalescingCacheOptions>? configure = null, bool lockOnA = false)
    {
        _configure = configure;
        Store = new FakeDistributedCache(Time);
        ViewA = new ControlledDistributedCache(Store);
        Lock = new TestLoadLock(Time);
        A = Track(TestNodes.Create(Time, ViewA, configure, Backplane, lockOnA ? Lock : null));
        B = Track(TestNodes.Create(Time, Store, configure, Backplane));
        Writer = Track(TestNodes.Create(Time, Store, configure));

        // A real backplane skips the sender by instance id: so does this one, for A's own announcements.
        Backplane.Sender.Value = A;
    }

    public FakeTimeProvider Time { get; } = new();

    public FakeDistributedCache Store { get; }

    public ControlledDistributedCache ViewA { get; }

    /// <summary>Gets the load lock node A uses when the cluster was made with <c>lockOnA</c>.</summary>
    public TestLoadLock Lock { get; }

    public InMemoryBackplane Backplane { get; } = new();

    internal DefaultCoalescingCache A { get; }

    internal DefaultCoalescingCache B { get; }

    /// <summary>Gets a node that writes L2 without announcing anything.</summary>
    internal DefaultCoalescingCache Writer { get; }

    /// <summary>A node that has never seen anything: reads L2 as a newcomer would.</summary>
    internal DefaultCoalescingCache NewNode() => Track(TestNodes.Create(Time, Store, _configure));

    /// <summary>What a caller that starts after <paramref name="kind"/> completed must get, when the loader would return <paramref name="loaded"/>.</summary>
    public static string Expected(Invalidation kind, string loaded) => kind is Invalidation.Set or Invalidation.Backplane ? "v2" : loaded;

    /// <summary>Supersedes <paramref name="key"/> on node A the way <paramref name="kind"/> says, and waits until that is done.</summary>
    public async Task InvalidateAsync(Invalidation kind, string key)
    {
        switch (kind)
        {
            case Invalidation.Set:
                await A.SetAsync(key, "v2");
                break;
            case Invalidation.Remove:
                await A.RemoveAsync(key);
                break;
            case Invalidation.RemoveAll:
                await A.RemoveByTagAsync("*");
                break;
            case Invalidation.Backplane:
                await SetOnBAsync(key);
                break;
        }
    }

    public void Dispose()
    {
        foreach (IDisposable node in _nodes)
        {
            node.Dispose();
        }
    }

    private async Task SetOnBAsync(string key)
    {
        Backplane.Sender.Value = B; // local to this call: B's announcement reaches A, not B itself
        await B.SetAsync(key, "v2");
    }

    private DefaultCoalescingCache Track(DefaultCoalescingCache node)
    {
        _nodes.Add(node);
        return node;
    }
}
