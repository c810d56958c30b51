using System.Globalization;
using System.Text;

namespace CacheGuard.Tests.Model;

/// <summary>How a generated loader behaves when the cache calls it. Simplest first: CsCheck shrinks towards low values.</summary>
internal enum LoaderMode
{
    /// <summary>Returns a completed task: the row's current version.</summary>
    Immediate,

    /// <summary>Yields once, then returns the row's version (read when it was called).</summary>
    Async,

    /// <summary>Reads the row when called, then waits until a step releases it (with its value, or a failure).</summary>
    Gated,

    /// <summary>Throws synchronously, before returning a task.</summary>
    Throws,

    /// <summary>Returns a task that fails after a yield.</summary>
    ThrowsAsync,
}

/// <summary>How the shared L2 treats the calls that reach it from now on.</summary>
internal enum L2Mode
{
    /// <summary>Answers at once.</summary>
    Normal,

    /// <summary>Acts on arrival (reads see the state then, writes land then) but answers only when a step releases the call: completions are reordered.</summary>
    Slow,

    /// <summary>Throws before returning a task; nothing is read or written.</summary>
    FailSync,

    /// <summary>Fails after a yield; nothing is read or written.</summary>
    FailAsync,

    /// <summary>Never answers and ignores its token; nothing is read or written. The cache's deadline must free the caller.</summary>
    Hang,

    /// <summary>Reads return bytes that are not an envelope; writes land.</summary>
    Garbage,

    /// <summary>Reads return the stored bytes cut in half; writes land.</summary>
    Truncated,
}

/// <summary>The tag a <c>RemoveByTagAsync</c> step invalidates.</summary>
internal enum InvalidationTag
{
    A,
    B,
    All,
}

internal enum WriteKind
{
    Set,
    Remove,
}

/// <summary>The durations every run uses (jitter is off, so lifetimes are exact).</summary>
internal static class ModelTimings
{
    public static readonly TimeSpan Expiration = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan ShortLocalExpiration = TimeSpan.FromSeconds(4);
    public static readonly TimeSpan SoftTimeout = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan HardTimeout = TimeSpan.FromSeconds(3);
    public static readonly TimeSpan L2Timeout = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan FailSafeMax = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan FailSafeThrottle = TimeSpan.FromSeconds(3);
    public static readonly TimeSpan BreakerWindow = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan BreakerDuration = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan TagCheckInterval = TimeSpan.FromSeconds(1);
    public const int BreakerThreshold = 3;
    public const int MaxAdvanceSeconds = 10;
}

/// <summary>One key's options, the same on every call that names the key, as a real application's would be.</summary>
internal sealed record KeyPolicy(bool FailSafe, bool SoftTimeout, bool HardTimeout, int Tag, bool EagerRefresh)
{
    public string? TagName => Tag switch { 1 => "a", 2 => "b", _ => null };

    public bool Carries(InvalidationTag tag) => tag == InvalidationTag.All || (tag == InvalidationTag.A && Tag == 1) || (tag == InvalidationTag.B && Tag == 2);

    public CacheEntryOptions ToOptions() => new()
    {
        FailSafe = FailSafe,
        LoaderSoftTimeout = SoftTimeout ? ModelTimings.SoftTimeout : null,
        LoaderHardTimeout = HardTimeout ? ModelTimings.HardTimeout : null,
        Tags = TagName is { } tag ? [tag] : null,
        EagerRefreshThreshold = EagerRefresh ? 0.5 : null,
    };

    public override string ToString()
    {
        var parts = new List<string>();
        if (FailSafe)
        {
            parts.Add("fail-safe");
        }

        if (SoftTimeout)
        {
            parts.Add($"soft timeout {ModelTimings.SoftTimeout.TotalSeconds} s");
        }

        if (HardTimeout)
        {
            parts.Add($"hard timeout {ModelTimings.HardTimeout.TotalSeconds} s");
        }

        if (TagName is { } tag)
        {
            parts.Add($"tag {tag}");
        }

        if (EagerRefresh)
        {
            parts.Add("eager refresh at 50 %");
        }

        return parts.Count == 0 ? "plain" : string.Join(", ", parts);
    }
}

/// <summary>What one run sets up: the keys and their options, the tiers and the nodes.</summary>
internal sealed record ModelConfig(KeyPolicy[] Keys, bool HasL2, bool SecondNode, bool BackgroundCompletion, bool ShortLocalLifetime)
{
    public int NodeCount => HasL2 && SecondNode ? 2 : 1;

    public int NodeOf(int node) => node % NodeCount;

    public int KeyOf(int key) => key % Keys.Length;

    public static string KeyName(int key) => "k" + key.ToString(CultureInfo.InvariantCulture);

    public static string NodeName(int node) => node == 0 ? "A" : "B";

    /// <summary>The keys a batch step asks for: those in its mask that share the first one's options (one options object per batch call).</summary>
    public int[] BatchKeys(int mask)
    {
        var chosen = Enumerable.Range(0, Keys.Length).Where(k => (mask & (1 << k)) != 0).ToList();
        if (chosen.Count == 0)
        {
            chosen.Add(0);
        }

        KeyPolicy policy = Keys[chosen[0]];
        return chosen.Where(k => Keys[k] == policy).ToArray();
    }

    public void Describe(StringBuilder text)
    {
        text.Append(CultureInfo.InvariantCulture, $"setup: {(NodeCount == 2 ? "nodes A and B over one L2 and an in-memory backplane" : HasL2 ? "node A over an L2" : "node A, L1 only")}");
        text.Append(CultureInfo.InvariantCulture, $"; background completion {(BackgroundCompletion ? "on" : "off")}; lifetime {ModelTimings.Expiration.TotalSeconds} s");
        text.AppendLine(ShortLocalLifetime ? $", L1 {ModelTimings.ShortLocalExpiration.TotalSeconds} s" : string.Empty);
        for (int k = 0; k < Keys.Length; k++)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  {KeyName(k)}: {Keys[k]}");
        }
    }
}

/// <summary>One step of a generated program. Calls start a new caller and do not wait for it; <see cref="Race"/> skips the wait for quiet after the step.</summary>
internal abstract record Step(bool Race)
{
    public abstract string Describe(ModelConfig config, string caller);

    protected string Suffix => Race ? "   (the next step races it)" : string.Empty;
}

internal sealed record GetStep(int Node, int Key, LoaderMode Loader, bool Race) : Step(Race)
{
    public override string Describe(ModelConfig config, string caller) =>
        $"{ModelConfig.NodeName(config.NodeOf(Node))}  {caller}  GetOrLoad({ModelConfig.KeyName(config.KeyOf(Key))}, loader: {Loader}){Suffix}";
}

internal sealed record GetManyStep(int Node, int KeyMask, LoaderMode Loader, bool Race) : Step(Race)
{
    public override string Describe(ModelConfig config, string caller) =>
        $"{ModelConfig.NodeName(config.NodeOf(Node))}  {caller}  GetOrLoadMany([{string.Join(", ", config.BatchKeys(KeyMask).Select(ModelConfig.KeyName))}], loader: {Loader}){Suffix}";
}

internal sealed record TryGetStep(int Node, int Key, bool Race) : Step(Race)
{
    public override string Describe(ModelConfig config, string caller) =>
        $"{ModelConfig.NodeName(config.NodeOf(Node))}  {caller}  TryGet({ModelConfig.KeyName(config.KeyOf(Key))}){Suffix}";
}

internal sealed record WriteStep(int Node, int Key, WriteKind Kind, bool Race) : Step(Race)
{
    public override string Describe(ModelConfig config, string caller) =>
        $"{ModelConfig.NodeName(config.NodeOf(Node))}  {caller}  db write, then {(Kind == WriteKind.Set ? "Set" : "Remove")}({ModelConfig.KeyName(config.KeyOf(Key))}){Suffix}";
}

internal sealed record InvalidateStep(int Node, InvalidationTag Tag, bool Race) : Step(Race)
{
    public override string Describe(ModelConfig config, string caller) =>
        $"{ModelConfig.NodeName(config.NodeOf(Node))}  {caller}  db write of every key tagged {TagText}, then RemoveByTag({TagText}){Suffix}";

    public string TagText => Tag switch { InvalidationTag.A => "a", InvalidationTag.B => "b", _ => "*" };
}

internal sealed record ReleaseLoaderStep(int Pick, bool Fail, bool Race) : Step(Race)
{
    public override string Describe(ModelConfig config, string caller) =>
        $"       release waiting loader #{Pick} (mod the count) {(Fail ? "with a failure" : "with its value")}{Suffix}";
}

internal sealed record ReleaseL2Step(int Pick, bool Race) : Step(Race)
{
    public override string Describe(ModelConfig config, string caller) =>
        $"       answer waiting L2 call #{Pick} (mod the count){Suffix}";
}

internal sealed record L2ModeStep(L2Mode Mode, bool Race) : Step(Race)
{
    public override string Describe(ModelConfig config, string caller) => $"       L2 becomes {Mode}{Suffix}";
}

internal sealed record AdvanceStep(int Seconds) : Step(false)
{
    public override string Describe(ModelConfig config, string caller) => $"       clock +{Seconds} s";
}

/// <summary>A generated run: its setup and its steps. Printed one step per line, with the caller ("thread") each call starts.</summary>
internal sealed record ModelProgram(ModelConfig Config, Step[] Steps)
{
    public static bool StartsCaller(Step step) => step is GetStep or GetManyStep or TryGetStep or WriteStep or InvalidateStep;

    public string Print()
    {
        var text = new StringBuilder();
        Config.Describe(text);
        int caller = 0;
        for (int i = 0; i < Steps.Length; i++)
        {
            string name = StartsCaller(Steps[i]) ? "c" + (++caller).ToString(CultureInfo.InvariantCulture) : "  ";
            text.AppendLine(CultureInfo.InvariantCulture, $"  {i + 1,2}. {Steps[i].Describe(Config, name)}");
        }

        return text.ToString();
    }

    /// <summary>The program as C#, to paste into a regression test (<c>ModelRegressionTests</c> replays programs this way).</summary>
    public string ToCode()
    {
        var text = new StringBuilder();
        string keys = string.Join(", ", Config.Keys.Select(k => $"new KeyPolicy({Bool(k.FailSafe)}, {Bool(k.SoftTimeout)}, {Bool(k.HardTimeout)}, {k.Tag}, {Bool(k.EagerRefresh)})"));
        text.AppendLine("new ModelProgram(");
        text.AppendLine(CultureInfo.InvariantCulture, $"    new ModelConfig([{keys}], HasL2: {Bool(Config.HasL2)}, SecondNode: {Bool(Config.SecondNode)}, BackgroundCompletion: {Bool(Config.BackgroundCompletion)}, ShortLocalLifetime: {Bool(Config.ShortLocalLifetime)}),");
        text.AppendLine("    [");
        foreach (Step step in Steps)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"        {Code(step)},");
        }

        text.Append("    ])");
        return text.ToString();
    }

    public override string ToString() => Print();

    private static string Bool(bool value) => value ? "true" : "false";

    private static string Code(Step step) => step switch
    {
        GetStep s => $"new GetStep({s.Node}, {s.Key}, LoaderMode.{s.Loader}, {Bool(s.Race)})",
        GetManyStep s => $"new GetManyStep({s.Node}, {s.KeyMask}, LoaderMode.{s.Loader}, {Bool(s.Race)})",
        TryGetStep s => $"new TryGetStep({s.Node}, {s.Key}, {Bool(s.Race)})",
        WriteStep s => $"new WriteStep({s.Node}, {s.Key}, WriteKind.{s.Kind}, {Bool(s.Race)})",
        InvalidateStep s => $"new InvalidateStep({s.Node}, InvalidationTag.{s.Tag}, {Bool(s.Race)})",
        ReleaseLoaderStep s => $"new ReleaseLoaderStep({s.Pick}, {Bool(s.Fail)}, {Bool(s.Race)})",
        ReleaseL2Step s => $"new ReleaseL2Step({s.Pick}, {Bool(s.Race)})",
        L2ModeStep s => $"new L2ModeStep(L2Mode.{s.Mode}, {Bool(s.Race)})",
        AdvanceStep s => $"new AdvanceStep({s.Seconds})",
        _ => throw new ArgumentOutOfRangeException(nameof(step), step, "Unknown step."),
    };
}
