using System.Diagnostics;
using System.Text;

namespace CacheGuard.Packaging.Tests.Support;

/// <summary>Runs the dotnet CLI that runs these tests as a child process, and captures what it prints.</summary>
internal static class DotNet
{
    // A pack or build on a busy two-core machine takes minutes; this only guards against a hang.
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(15);

    // Set by `dotnet test` for its own MSBuild; a child dotnet must find its SDK itself.
    private static readonly string[] InheritedMSBuildVariables =
    [
        "MSBUILD_EXE_PATH", "MSBuildExtensionsPath", "MSBuildSDKsPath", "MSBuildLoadMicrosoftTargetsReadOnly",
        "MSBUILDNOINPROCNODE", "_MSBUILDTLENABLED",
    ];

    internal sealed record Result(int ExitCode, string Output)
    {
        public override string ToString() => $"exit code {ExitCode}:{Environment.NewLine}{Output}";
    }

    internal static Task<Result> RunAsync(string workingDirectory, params string[] arguments) =>
        RunProcessAsync(Executable(), workingDirectory, arguments);

    /// <summary>Runs any program (git, for one) the same way.</summary>
    internal static async Task<Result> RunProcessAsync(string fileName, string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (string name in InheritedMSBuildVariables)
        {
            start.Environment.Remove(name);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";

        using var process = new Process { StartInfo = start };
        var output = new StringBuilder();
        void Append(object sender, DataReceivedEventArgs e)
        {
            if (e.Data is not null)
            {
                lock (output)
                {
                    output.AppendLine(e.Data);
                }
            }
        }

        process.OutputDataReceived += Append;
        process.ErrorDataReceived += Append;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var hang = new CancellationTokenSource(HangGuard);
        try
        {
            await process.WaitForExitAsync(hang.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} did not finish within {HangGuard}:{Environment.NewLine}{output}");
        }

        process.WaitForExit(); // drains the redirected output
        lock (output)
        {
            return new Result(process.ExitCode, output.ToString());
        }
    }

    private static string Executable()
    {
        // `dotnet test` tells its children which dotnet it is; otherwise take the one on PATH.
        string? host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        return !string.IsNullOrEmpty(host) && File.Exists(host) ? host : "dotnet";
    }
}
