using System.Text.Json;
using System.Xml.Linq;

namespace CacheGuard.Packaging.Tests.Support;

/// <summary>The source tree these tests were built from, and what MSBuild says about its package projects.</summary>
internal static class Repository
{
    internal static readonly string[] PackageIds = ["CacheGuard", "CacheGuard.Redis"];

    internal static string Root { get; } = FindRoot();

    internal static string ProjectPath(string packageId) => Path.Combine(Root, "src", packageId, packageId + ".csproj");

    /// <summary>Gets the version set in Directory.Build.props, the one place it is set.</summary>
    internal static string VersionPrefix()
    {
        var props = XDocument.Load(Path.Combine(Root, "Directory.Build.props"));
        string? version = props.Descendants("VersionPrefix").Select(e => e.Value.Trim()).SingleOrDefault();
        Assert.That(version, Is.Not.Null.And.Not.Empty, "Directory.Build.props sets VersionPrefix once.");
        return version!;
    }

    /// <summary>Gets the commit the tree is at, or null when it is not a git checkout.</summary>
    internal static async Task<string?> HeadCommitAsync()
    {
        if (!Path.Exists(Path.Combine(Root, ".git")))
        {
            return null;
        }

        DotNet.Result result = await DotNet.RunProcessAsync("git", Root, "rev-parse", "HEAD");
        Assert.That(result.ExitCode, Is.Zero, $"git rev-parse HEAD in a git checkout: {result}");
        return result.Output.Trim();
    }

    /// <summary>Evaluates a project with MSBuild and returns its package references and their central versions.</summary>
    internal static async Task<ProjectFacts> EvaluateAsync(string packageId)
    {
        DotNet.Result result = await DotNet.RunAsync(
            Root, "msbuild", ProjectPath(packageId), "-nologo", "-nodeReuse:false",
            "-getItem:PackageReference", "-getItem:PackageVersion", "-getItem:ProjectReference",
            "-getProperty:Version", "-getProperty:EnablePackageValidation");
        Assert.That(result.ExitCode, Is.Zero, $"Evaluating {packageId}: {result}");

        using JsonDocument json = JsonDocument.Parse(result.Output);
        JsonElement items = json.RootElement.GetProperty("Items");
        JsonElement properties = json.RootElement.GetProperty("Properties");

        Dictionary<string, string> central = Items(items, "PackageVersion")
            .ToDictionary(i => i.GetProperty("Identity").GetString()!, i => i.GetProperty("Version").GetString()!, StringComparer.OrdinalIgnoreCase);
        List<(string Id, bool Private)> references = Items(items, "PackageReference")
            .Select(i => (i.GetProperty("Identity").GetString()!, Metadata(i, "PrivateAssets").Equals("all", StringComparison.OrdinalIgnoreCase)))
            .ToList();
        List<string> projects = Items(items, "ProjectReference")
            .Select(i => Path.GetFileNameWithoutExtension(i.GetProperty("Identity").GetString()!))
            .ToList();

        return new ProjectFacts(
            properties.GetProperty("Version").GetString()!,
            properties.GetProperty("EnablePackageValidation").GetString()!,
            references, central, projects);

        static IEnumerable<JsonElement> Items(JsonElement items, string name) =>
            items.TryGetProperty(name, out JsonElement list) ? list.EnumerateArray() : [];

        static string Metadata(JsonElement item, string name) =>
            item.TryGetProperty(name, out JsonElement value) ? value.GetString() ?? "" : "";
    }

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "CacheGuard.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No CacheGuard.sln above {AppContext.BaseDirectory}.");
    }
}

/// <summary>What MSBuild evaluates for a package project.</summary>
/// <param name="Version">The package version.</param>
/// <param name="EnablePackageValidation">The EnablePackageValidation property.</param>
/// <param name="PackageReferences">Each package reference, and whether it is private (build-time only).</param>
/// <param name="CentralVersions">Directory.Packages.props' versions, by package id.</param>
/// <param name="ProjectReferences">The names of the referenced projects.</param>
internal sealed record ProjectFacts(
    string Version,
    string EnablePackageValidation,
    IReadOnlyList<(string Id, bool Private)> PackageReferences,
    IReadOnlyDictionary<string, string> CentralVersions,
    IReadOnlyList<string> ProjectReferences);
