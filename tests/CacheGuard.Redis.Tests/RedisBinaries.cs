using System.Diagnostics;

namespace CacheGuard.Redis.Tests;

/// <summary>
/// Finds redis-server and redis-cli for the process backend and the cluster tests. In the spirit of Testcontainers,
/// which fetches the image it needs: on a Debian machine where the tests run as root, a missing server is installed
/// from the distribution's packages once.
/// </summary>
internal static class RedisBinaries
{
    /// <summary>Names the redis-server binary to use instead of the one on PATH.</summary>
    public const string BinaryVariable = "CACHEGUARD_REDIS_SERVER";

    /// <summary>Set to 1 to keep the tests from installing redis-server when it is missing.</summary>
    public const string NoInstallVariable = "CACHEGUARD_REDIS_NO_INSTALL";

    private static readonly Lazy<bool> Provisioned = new(InstallWithApt);

    public static string Find(string name)
    {
        string? overridePath = name == "redis-server" ? Environment.GetEnvironmentVariable(BinaryVariable) : null;
        if (!string.IsNullOrEmpty(overridePath) && File.Exists(overridePath))
        {
            return overridePath;
        }

        string? found = Search(name);
        if (found is null && Provisioned.Value)
        {
            found = Search(name);
        }

        if (found is not null)
        {
            return found;
        }

        Assert.Fail(
            $"{name} was not found. The Redis tests need a real server: a Docker engine with the image redis:7.0 (.ci/docker.sh makes both), " +
            $"and redis-server / redis-cli for the cluster tests (Debian/Ubuntu: sudo apt-get install -y redis-server redis-tools), or {BinaryVariable} naming the binary.");
        throw new UnreachableException();
    }

    private static string? Search(string name)
    {
        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator).Append("/usr/bin").Append("/usr/local/bin"))
        {
            string candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static bool InstallWithApt()
    {
        if (Environment.GetEnvironmentVariable(NoInstallVariable) == "1" || !File.Exists("/usr/bin/apt-get") || Environment.UserName != "root")
        {
            return false;
        }

        TestContext.Progress.WriteLine($"redis-server is missing: installing redis-server and redis-tools with apt-get (set {NoInstallVariable}=1 to prevent this).");
        return RunApt("update -qq") && RunApt("install -y -qq redis-server redis-tools");

        static bool RunApt(string arguments)
        {
            var start = new ProcessStartInfo("/usr/bin/apt-get", arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
            using Process? apt = Process.Start(start);
            if (apt is null)
            {
                return false;
            }

            Task<string> output = apt.StandardOutput.ReadToEndAsync();
            Task<string> errors = apt.StandardError.ReadToEndAsync();
            if (!apt.WaitForExit(TimeSpan.FromMinutes(10)))
            {
                apt.Kill(entireProcessTree: true);
                TestContext.Progress.WriteLine($"apt-get {arguments} did not finish within 10 minutes.");
                return false;
            }

            if (apt.ExitCode != 0)
            {
                TestContext.Progress.WriteLine($"apt-get {arguments} failed ({apt.ExitCode}): {errors.Result}{output.Result}");
            }

            return apt.ExitCode == 0;
        }
    }
}
