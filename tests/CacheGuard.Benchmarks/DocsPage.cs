namespace CacheGuard.Benchmarks;

/// <summary>
/// Writes a run into the docs: the charts into <c>docs/images/</c>, and the report (settings, tables, targets) into
/// <c>docs/benchmarks.md</c> between its <see cref="Begin"/> and <see cref="End"/> markers; the prose around them is
/// left as written.
/// </summary>
internal static class DocsPage
{
    public const string Begin = "<!-- generated:begin (written by tests/CacheGuard.Benchmarks; do not edit by hand) -->";
    public const string End = "<!-- generated:end -->";

    public static void Update(string report, SuiteResults results)
    {
        string? root = FindRepositoryRoot();
        if (root is null)
        {
            Console.WriteLine("// docs/ not updated: no CacheGuard.sln above the current or the program's directory.");
            return;
        }

        string page = Path.Combine(root, "docs", "benchmarks.md");
        List<string> charts = Charts.Write(results, Path.Combine(root, "docs", "images"));
        string text = File.Exists(page) ? File.ReadAllText(page) : string.Empty;
        int begin = text.IndexOf(Begin, StringComparison.Ordinal);
        int end = text.IndexOf(End, StringComparison.Ordinal);
        string generated = Begin + "\n\n" + report.TrimEnd() + "\n\n" + End;
        text = begin >= 0 && end > begin
            ? text[..begin] + generated + text[(end + End.Length)..]
            : text.TrimEnd() + "\n\n" + generated + "\n";
        File.WriteAllText(page, text);
        Console.WriteLine($"// {page} updated; {charts.Count} chart(s) in docs/images/");
    }

    private static string? FindRepositoryRoot()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (DirectoryInfo? dir = new(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "CacheGuard.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return null;
    }
}
