using System.Text.Json;
using System.Xml.Linq;
using CacheGuard.Packaging.Tests.Support;
using NuGet.Packaging;
using NuGet.Packaging.Core;
using NuGet.Versioning;

namespace CacheGuard.Packaging.Tests;

/// <summary>
/// Packs both packages from this source tree, as <c>dotnet pack -c Release</c> does, into a temporary folder (build
/// output there too, so the tree's bin/obj are left alone), and checks what a user receives.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class PackageContentTests
{
    private const string TargetFramework = "net10.0";

    private string _temp = "";
    private string _output = "";
    private string _version = "";
    private string? _commit;
    private readonly Dictionary<string, ProjectFacts> _facts = [];

    [OneTimeSetUp]
    public async Task PackBothPackages()
    {
        _temp = Directory.CreateTempSubdirectory("cacheguard-packaging-").FullName;
        _output = Path.Combine(_temp, "packages");
        _version = Repository.VersionPrefix();
        _commit = await Repository.HeadCommitAsync();

        foreach (string id in Repository.PackageIds)
        {
            DotNet.Result pack = await DotNet.RunAsync(
                Repository.Root, "pack", Repository.ProjectPath(id), "-c", "Release", "-o", _output,
                "--artifacts-path", Path.Combine(_temp, "build"), "--disable-build-servers", "-nologo");
            Assert.That(pack.ExitCode, Is.Zero, $"dotnet pack {id} (package validation runs here too): {pack}");
            _facts[id] = await Repository.EvaluateAsync(id);
        }
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
    public void EachProject_YieldsItsPackageAndSymbolsPackage_AndNothingElse()
    {
        string[] expected = [.. Repository.PackageIds.SelectMany(id => new[] { $"{id}.{_version}.nupkg", $"{id}.{_version}.snupkg" })];
        Assert.That(Directory.GetFiles(_output).Select(Path.GetFileName), Is.EquivalentTo(expected));
    }

    [TestCaseSource(nameof(Ids))]
    public void Metadata_IsComplete(string id)
    {
        using var package = Open(id);
        NuspecReader nuspec = package.NuspecReader;

        Assert.Multiple(() =>
        {
            Assert.That(nuspec.GetId(), Is.EqualTo(id));
            Assert.That(nuspec.GetVersion().ToNormalizedString(), Is.EqualTo(_version), "The version from Directory.Build.props.");
            Assert.That(_facts[id].Version, Is.EqualTo(_version));
            Assert.That(nuspec.GetAuthors(), Is.EqualTo("CacheGuard contributors"));
            Assert.That(nuspec.GetDescription(), Has.Length.GreaterThan(60));
            Assert.That(nuspec.GetTags().Split(' '), Does.Contain("cache").And.Contain("caching"));
            Assert.That(nuspec.GetProjectUrl(), Does.StartWith("https://github.com/"));
            Assert.That(nuspec.GetCopyright(), Does.Contain("CacheGuard contributors"));
            Assert.That(_facts[id].EnablePackageValidation, Is.EqualTo("true"), "Package validation runs on pack.");

            RepositoryMetadata repository = nuspec.GetRepositoryMetadata();
            Assert.That(repository.Type, Is.EqualTo("git"));
            Assert.That(repository.Url, Does.StartWith("https://github.com/"));
            if (_commit is not null)
            {
                Assert.That(repository.Commit, Is.EqualTo(_commit), "The nuspec names the commit it was built from.");
            }
        });
    }

    [TestCaseSource(nameof(Ids))]
    public void License_IsTheMitExpression_AndTheLicenseFileIsPacked(string id)
    {
        using var package = Open(id);
        LicenseMetadata? license = package.NuspecReader.GetLicenseMetadata();

        Assert.That(license, Is.Not.Null);
        Assert.That(license!.Type, Is.EqualTo(LicenseType.Expression));
        Assert.That(license.License, Is.EqualTo("MIT"));
        Assert.That(Read(package, "LICENSE"), Is.EqualTo(File.ReadAllBytes(Path.Combine(Repository.Root, "LICENSE"))));
        Assert.That(File.ReadAllText(Path.Combine(Repository.Root, "LICENSE")), Does.StartWith("MIT License").And.Contain("CacheGuard contributors"));
    }

    [TestCaseSource(nameof(Ids))]
    public void Readme_IsPacked_AndShowsInstallAndFirstUse(string id)
    {
        using var package = Open(id);

        Assert.That(package.NuspecReader.GetReadme(), Is.EqualTo("README.md"));
        string readme = System.Text.Encoding.UTF8.GetString(Read(package, "README.md"));
        Assert.That(readme, Does.Contain($"dotnet add package {id}\n"));
        Assert.That(readme, Does.Contain("```csharp").And.Contain("AddCoalescingCache("));
    }

    [TestCaseSource(nameof(Ids))]
    public void Assembly_AndItsXmlDocs_AreTheOnlyLibraryFiles_AndEveryPublicTypeIsDocumented(string id)
    {
        using var package = Open(id);
        string dll = $"lib/{TargetFramework}/{id}.dll";
        string xml = $"lib/{TargetFramework}/{id}.xml";

        Assert.That(package.GetFiles().Where(f => f.StartsWith("lib/", StringComparison.Ordinal)), Is.EquivalentTo(new[] { dll, xml }));

        byte[] assembly = Read(package, dll);
        var docs = XDocument.Load(new MemoryStream(Read(package, xml)));
        Assert.That(docs.Root!.Element("assembly")!.Element("name")!.Value, Is.EqualTo(id));
        var documented = docs.Descendants("member").Select(m => (string)m.Attribute("name")!).ToHashSet(StringComparer.Ordinal);
        IReadOnlyList<string> publicTypes = Pdb.PublicTypeDocumentationIds(assembly);
        Assert.That(publicTypes, Is.Not.Empty);
        Assert.That(publicTypes, Is.SubsetOf(documented), "Every public type has XML docs in the package.");
        Assert.That(Pdb.IsDeterministic(assembly), Is.True, "The compiler marked the assembly reproducible.");
    }

    [TestCaseSource(nameof(Ids))]
    public void Dependencies_AreTheProjectsReferences_WithTheCentralVersionAsMinimum(string id)
    {
        using var package = Open(id);
        ProjectFacts facts = _facts[id];
        PackageDependencyGroup group = package.NuspecReader.GetDependencyGroups().Single();
        Assert.That(group.TargetFramework.GetShortFolderName(), Is.EqualTo(TargetFramework));
        Dictionary<string, VersionRange> actual = group.Packages.ToDictionary(d => d.Id, d => d.VersionRange, StringComparer.OrdinalIgnoreCase);

        var expected = new Dictionary<string, VersionRange>(StringComparer.OrdinalIgnoreCase);
        foreach ((string reference, bool isPrivate) in facts.PackageReferences)
        {
            if (!isPrivate)
            {
                expected[reference] = new VersionRange(NuGetVersion.Parse(facts.CentralVersions[reference]));
            }
        }

        foreach (string project in facts.ProjectReferences)
        {
            // Sibling packages are pinned to the same version: CacheGuard.Redis uses the core's internals.
            expected[project] = new VersionRange(NuGetVersion.Parse(_version), true, NuGetVersion.Parse(_version), true);
        }

        Assert.That(actual.Keys, Is.EquivalentTo(expected.Keys), "One dependency per non-private package reference and per project reference.");
        Assert.Multiple(() =>
        {
            foreach ((string dependency, VersionRange range) in expected)
            {
                Assert.That(actual[dependency], Is.EqualTo(range), dependency);
            }

            foreach ((string dependency, VersionRange range) in actual.Where(d => d.Key.StartsWith("Microsoft.Extensions.", StringComparison.Ordinal)))
            {
                Assert.That((range.MinVersion!.Major, range.MinVersion.Minor, range.HasUpperBound), Is.EqualTo((10, 0, false)), $"{dependency}: 10.0.x or later");
            }

            string[] buildOnly = ["DotNet.ReproducibleBuilds", "Microsoft.SourceLink.GitHub", "Microsoft.CodeAnalysis.PublicApiAnalyzers"];
            Assert.That(actual.Keys.Intersect(buildOnly), Is.Empty, "Build-time packages never become dependencies.");
        });
    }

    [Test]
    public void Core_DependsOnTheMicrosoftExtensionsItBuildsOn()
    {
        using var package = Open("CacheGuard");
        var dependencies = package.NuspecReader.GetDependencyGroups().Single().Packages.Select(d => d.Id).ToList();

        Assert.That(dependencies, Is.SupersetOf(new[]
        {
            "Microsoft.Extensions.Caching.Abstractions", "Microsoft.Extensions.Caching.Memory",
            "Microsoft.Extensions.DependencyInjection.Abstractions", "Microsoft.Extensions.Logging.Abstractions",
            "Microsoft.Extensions.Options",
        }));
        Assert.That(dependencies, Has.None.StartsWith("CacheGuard"));
        Assert.That(dependencies, Has.None.Contains("Redis"), "The core has no Redis dependency.");
    }

    [Test]
    public void Redis_DependsOnTheCoreAtExactlyItsOwnVersion_AndOnMicrosoftExtensions10()
    {
        using var package = Open("CacheGuard.Redis");
        var dependencies = package.NuspecReader.GetDependencyGroups().Single().Packages.ToList();

        PackageDependency core = dependencies.Single(d => d.Id == "CacheGuard");
        Assert.That(core.VersionRange.ToNormalizedString(), Is.EqualTo($"[{_version}, {_version}]"));
        Assert.That(dependencies.Where(d => d.Id.StartsWith("Microsoft.Extensions.", StringComparison.Ordinal)), Is.Not.Empty);
    }

    [TestCaseSource(nameof(Ids))]
    public void SymbolsPackage_HoldsThePdbOfThePackedAssembly_WithSourceLinkToTheCommit(string id)
    {
        using var package = Open(id);
        using var symbols = new PackageArchiveReader(Path.Combine(_output, $"{id}.{_version}.snupkg"));
        string pdbPath = $"lib/{TargetFramework}/{id}.pdb";
        Assert.That(symbols.GetFiles().Where(f => f.StartsWith("lib/", StringComparison.Ordinal)), Is.EqualTo(new[] { pdbPath }));

        (Guid guid, uint stamp) = Pdb.ExpectedPdbId(Read(package, $"lib/{TargetFramework}/{id}.dll"));
        (Guid pdbGuid, uint pdbStamp, string? sourceLink) = Pdb.Read(Read(symbols, pdbPath));
        Assert.That((pdbGuid, pdbStamp), Is.EqualTo((guid, stamp)), "The symbols belong to the packed assembly.");

        Assert.That(sourceLink, Is.Not.Null, "The PDB carries a source link map.");
        using JsonDocument map = JsonDocument.Parse(sourceLink!);
        string[] targets = [.. map.RootElement.GetProperty("documents").EnumerateObject().Select(p => p.Value.GetString()!)];
        Assert.That(targets, Is.Not.Empty);
        Assert.That(targets, Has.All.StartWith("https://raw.githubusercontent.com/"));
        Assert.That(targets, Has.All.EndWith("/*"));
        if (_commit is not null)
        {
            Assert.That(targets, Has.All.Contains($"/{_commit}/"), "Sources are mapped at the commit the package was built from.");
        }
    }

    private static string[] Ids() => Repository.PackageIds;

    private PackageArchiveReader Open(string id) => new(Path.Combine(_output, $"{id}.{_version}.nupkg"));

    private static byte[] Read(PackageArchiveReader package, string path)
    {
        using Stream stream = package.GetStream(path);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
