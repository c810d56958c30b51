#!/usr/bin/env bash
# Packs CacheGuard and CacheGuard.Redis into artifacts/, then consumes them as a user would: a console app
# (tests/CacheGuard.PackageConsumer, copied into a temporary folder) restores exactly the packed version from
# artifacts/ through a nuget.config that adds that folder as a package source beside the machine's own sources, runs
# README.md's first example on the embedded default, and prints one line that is checked here.
# Also prints each package's size and dependencies. Ends with "packages: ok" (exit 0) or "packages: FAILED ..." (exit 1).
#
# Run from anywhere: bash .ci/packages.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '\n== %s\n' "$*"; }
fail() {
  echo "packages: FAILED ($*)"
  exit 1
}

ids=(CacheGuard CacheGuard.Redis)
version=$(dotnet msbuild src/CacheGuard/CacheGuard.csproj -nologo -getProperty:Version)
[ -n "$version" ] || fail "no version from Directory.Build.props"

log "dotnet pack -c Release -o artifacts (version $version)"
rm -rf artifacts
dotnet pack -c Release -o artifacts --disable-build-servers -nologo || fail "dotnet pack failed"

expected_files=$(for id in "${ids[@]}"; do printf '%s\n' "$id.$version.nupkg" "$id.$version.snupkg"; done | sort)
actual_files=$(ls artifacts | sort)
if [ "$actual_files" != "$expected_files" ]; then
  printf 'artifacts/ holds:\n%s\nexpected exactly:\n%s\n' "$actual_files" "$expected_files"
  fail "artifacts/ does not hold exactly the two packages and their symbols"
fi

log "packages"
for id in "${ids[@]}"; do
  nupkg="artifacts/$id.$version.nupkg"
  snupkg="artifacts/$id.$version.snupkg"
  printf '%s %s: %s bytes (symbols %s bytes)\n' "$id" "$version" "$(stat -c %s "$nupkg")" "$(stat -c %s "$snupkg")"
  unzip -p "$nupkg" "$id.nuspec" | grep -o '<dependency id="[^"]*" version="[^"]*"' |
    sed -E 's/<dependency id="([^"]*)" version="([^"]*)"/  depends on \1 \2/'
done

log "a consumer app restores $version from artifacts/ and runs README.md's first example"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
app="$work/app"
mkdir -p "$app"
cp tests/CacheGuard.PackageConsumer/Program.cs tests/CacheGuard.PackageConsumer/CacheGuard.PackageConsumer.csproj "$app/"

# The local folder feed beside the machine's configured sources (none cleared). Package source mapping sends the
# CacheGuard packages to the local feed only, and everything else to the sources the machine already has.
write_config() {
  {
    echo '<?xml version="1.0" encoding="utf-8"?>'
    echo '<configuration>'
    echo '  <packageSources>'
    echo "    <add key=\"cacheguard-artifacts\" value=\"$root/artifacts\" />"
    echo '  </packageSources>'
    if [ "$#" -gt 0 ]; then
      echo '  <packageSourceMapping>'
      echo '    <packageSource key="cacheguard-artifacts">'
      echo '      <package pattern="CacheGuard" />'
      echo '      <package pattern="CacheGuard.*" />'
      echo '    </packageSource>'
      for source in "$@"; do
        echo "    <packageSource key=\"$source\"><package pattern=\"*\" /></packageSource>"
      done
      echo '  </packageSourceMapping>'
    fi
    echo '</configuration>'
  } >"$app/nuget.config"
}
write_config
mapfile -t machine_sources < <(cd "$app" && dotnet nuget list source |
  sed -nE 's/^ *[0-9]+\. +(.*) \[Enabled\]$/\1/p' | grep -vx 'cacheguard-artifacts' || true)
write_config "${machine_sources[@]}"
echo "package sources: cacheguard-artifacts ($root/artifacts) for CacheGuard*, ${machine_sources[*]:-none} for the rest"

# A fresh packages folder, so no copy of $version cached by an earlier run can stand in for the one just packed; and
# no Directory.Build.props or Directory.Packages.props from above the temporary folder.
export NUGET_PACKAGES="$work/packages"
isolate=(-p:ImportDirectoryBuildProps=false -p:ImportDirectoryBuildTargets=false -p:ImportDirectoryPackagesProps=false)
dotnet build "$app" -c Release -nologo --disable-build-servers "-p:CacheGuardVersion=$version" "${isolate[@]}" ||
  fail "the consumer app did not build against the packages"

for id in "${ids[@]}"; do
  lower=$(echo "$id" | tr '[:upper:]' '[:lower:]')
  restored="$NUGET_PACKAGES/$lower/$version/$lower.$version.nupkg.sha512"
  [ -f "$restored" ] || fail "$id $version was not restored"
  packed=$(openssl dgst -sha512 -binary "artifacts/$id.$version.nupkg" | base64 -w0)
  [ "$(cat "$restored")" = "$packed" ] || fail "the restored $id $version is not the one in artifacts/"
  echo "restored $id $version from artifacts/ (same SHA-512)"
done

line=$(dotnet "$app/bin/Release/net10.0/CacheGuard.PackageConsumer.dll" | tail -n 1) || true
echo "$line"
expected_line="package-consumer: ok cacheguard=$version cacheguard.redis=$version callers=100 loads=1 sync-hit=true loads-after-rename=2 not-found-loads=1"
[ "$line" = "$expected_line" ] || fail "the consumer printed '$line', expected '$expected_line'"

echo
echo "packages: ok"
