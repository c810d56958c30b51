using System.Text.RegularExpressions;
using CacheGuard.Packaging.Tests.Support;

namespace CacheGuard.Packaging.Tests;

/// <summary>
/// Builds a copy of the core project (with the repository's build settings) in which the public API and
/// PublicAPI.Unshipped.txt disagree both ways, and checks that the build fails for exactly those two reasons.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed partial class PublicApiEnforcementTests
{
    private const string UndeclaredType = "CacheGuard.PublicApiProbe";
    private const string VanishedMember = "CacheGuard.CoalescingCacheOptions.NoSuchOption.get -> int";

    private string _temp = "";
    private DotNet.Result _build = new(0, "");

    [OneTimeSetUp]
    public async Task BuildACopyWithAnUndeclaredAndAVanishedMember()
    {
        _temp = Directory.CreateTempSubdirectory("cacheguard-publicapi-").FullName;
        foreach (string file in new[] { "Directory.Build.props", "Directory.Packages.props", "global.json", "LICENSE" })
        {
            File.Copy(Path.Combine(Repository.Root, file), Path.Combine(_temp, file));
        }

        string source = Path.Combine(Repository.Root, "src", "CacheGuard");
        string copy = Path.Combine(_temp, "src", "CacheGuard");
        CopySources(source, copy);

        await File.WriteAllTextAsync(Path.Combine(copy, "PublicApiProbe.cs"), """
            namespace CacheGuard;

            /// <summary>A public type no PublicAPI file declares.</summary>
            public static class PublicApiProbe
            {
                /// <summary>Gets one.</summary>
                public static int Value => 1;
            }
            """);
        await File.AppendAllTextAsync(Path.Combine(copy, "PublicAPI.Unshipped.txt"), VanishedMember + Environment.NewLine);

        _build = await DotNet.RunAsync(_temp, "build", Path.Combine(copy, "CacheGuard.csproj"), "--disable-build-servers", "-nologo");
    }

    [OneTimeTearDown]
    public void DeleteTemporaryFolder()
    {
        if (_temp.Length > 0)
        {
            Directory.Delete(_temp, recursive: true);
        }
    }

    [Test]
    public void TheBuild_FailsOnlyOnThePublicApiRules()
    {
        Assert.That(_build.ExitCode, Is.Not.Zero, _build.ToString());
        string[] rules = [.. ErrorCode().Matches(_build.Output).Select(m => m.Groups["code"].Value).Distinct()];
        Assert.That(rules, Is.EquivalentTo(new[] { "RS0016", "RS0017" }), _build.ToString());
    }

    [Test]
    public void AnUndeclaredPublicMember_IsAnError()
    {
        Assert.That(_build.Output, Does.Match($@"error RS0016: Symbol '{Regex.Escape(UndeclaredType)}' is not part of the declared public API"));
    }

    [Test]
    public void ADeclaredMemberThatNoLongerExists_IsAnError()
    {
        Assert.That(_build.Output, Does.Match($@"error RS0017: Symbol '{Regex.Escape(VanishedMember)}' is part of the declared API"));
    }

    private static void CopySources(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.EnumerateFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }

        foreach (string directory in Directory.EnumerateDirectories(from))
        {
            string name = Path.GetFileName(directory);
            if (name is not ("bin" or "obj"))
            {
                CopySources(directory, Path.Combine(to, name));
            }
        }
    }

    [GeneratedRegex(@": error (?<code>[A-Z]+[0-9]+):")]
    private static partial Regex ErrorCode();
}
