using System.Text.RegularExpressions;

namespace CacheGuard.DocsSnippets;

/// <summary>
/// Every <c>```csharp</c> block in docs/ must appear, line for line (indentation and blank lines aside), in one of this
/// project's source files, which the build compiles: a snippet that drifts from compiling code fails here.
/// </summary>
public partial class DocsSnippetTests
{
    /// <summary>Pages not checked yet, each with the reason; a listed page that no longer needs it fails the test.</summary>
    private static readonly Dictionary<string, string> NotYetChecked = new(StringComparer.Ordinal)
    {
        ["redis.md"] = "owned by the Redis tier; its snippets elide arguments with '...', which does not compile",
    };

    [Test]
    public void EveryCSharpBlockInDocs_IsCompiledCode()
    {
        string root = RepositoryRoot();
        string[] sources = [.. Directory.EnumerateFiles(Path.Combine(root, "tests", "CacheGuard.DocsSnippets"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(f => Normalize(File.ReadAllText(f)))];
        var missing = new List<string>();
        int checkedBlocks = 0;

        foreach (string page in Directory.EnumerateFiles(Path.Combine(root, "docs"), "*.md"))
        {
            string name = Path.GetFileName(page);
            if (NotYetChecked.ContainsKey(name))
            {
                continue;
            }

            foreach (Match block in CSharpBlock().Matches(File.ReadAllText(page)))
            {
                checkedBlocks++;
                string code = Normalize(block.Groups[1].Value);
                if (!sources.Any(source => source.Contains(code, StringComparison.Ordinal)))
                {
                    missing.Add($"{name}:\n{block.Groups[1].Value}");
                }
            }
        }

        Assert.That(checkedBlocks, Is.GreaterThan(10), "the pages' snippets were found");
        Assert.That(missing, Is.Empty, "add these snippets to tests/CacheGuard.DocsSnippets (or fix the page):\n" + string.Join("\n---\n", missing));
    }

    [Test]
    public void PagesLeftOut_StillExist_AndStillHaveSnippets()
    {
        foreach (string name in NotYetChecked.Keys)
        {
            string page = Path.Combine(RepositoryRoot(), "docs", name);
            Assert.That(File.Exists(page) && CSharpBlock().IsMatch(File.ReadAllText(page)), Is.True, $"{name} no longer needs leaving out: remove it from NotYetChecked");
        }
    }

    /// <summary>One line per code line, trimmed, blank lines dropped, joined with newlines and fenced by them.</summary>
    private static string Normalize(string code) =>
        "\n" + string.Join("\n", code.Replace("\r", "", StringComparison.Ordinal).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0)) + "\n";

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CacheGuard.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("CacheGuard.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"```csharp\r?\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();
}
