#!/usr/bin/env bash
# Builds the npm packages of the veref CLI the way esbuild and biome ship
# Go/Rust binaries: @verefwork/cli (a small launcher) plus one package per
# platform holding the cross-compiled binary, listed as optional
# dependencies so npm installs only the one that fits the machine.
#
#   npm/build.sh [--version 1.2.3] [--out DIR] [--targets "linux/amd64 darwin/arm64"] [--pack]
#
# Defaults: the version from the latest v* tag (else 0.0.0-dev.<commit>),
# DIR npm/dist (git-ignored), every target, no tarballs. --pack also runs
# npm pack, leaving DIR/*.tgz.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version="" out="$root/npm/dist" pack=0
targets="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --pack) pack=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
cd "$root"
if [ -z "$version" ]; then
  version=$(git describe --tags --match 'v[0-9]*' --abbrev=0 2>/dev/null | sed 's/^v//' || true)
  [ -n "$version" ] || version="0.0.0-dev.$(git rev-parse --short=12 HEAD)"
fi
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "build.sh: $version is not a semantic version" >&2; exit 2
fi
command -v node >/dev/null || { echo "build.sh: node is required" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
for t in $targets; do
  goos=${t%/*} goarch=${t#*/}
  case "$goos" in
    windows) npmos=win32 exe=veref.exe ;;
    linux|darwin) npmos=$goos exe=veref ;;
    *) echo "build.sh: unsupported OS $goos" >&2; exit 2 ;;
  esac
  case "$goarch" in
    amd64) cpu=x64 ;;
    arm64) cpu=arm64 ;;
    *) echo "build.sh: unsupported architecture $goarch" >&2; exit 2 ;;
  esac
  name="cli-$npmos-$cpu" dir="$out/cli-$npmos-$cpu"
  echo "building @verefwork/$name ($goos/$goarch)"
  mkdir -p "$dir/bin"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$dir/bin/$exe" ./cmd/veref
  NAME="@verefwork/$name" VERSION="$version" OS="$npmos" CPU="$cpu" EXE="$exe" node -e '
    const e = process.env;
    const pkg = {
      name: e.NAME, version: e.VERSION,
      description: `The veref binary for ${e.OS} ${e.CPU}; install @verefwork/cli, which uses it`,
      license: "UNLICENSED",
      repository: { type: "git", url: "git+https://github.com/verefwork/veref.git" },
      os: [e.OS], cpu: [e.CPU], files: [`bin/${e.EXE}`], preferUnplugged: true,
    };
    require("fs").writeFileSync(process.argv[1], JSON.stringify(pkg, null, 2) + "\n");
  ' "$dir/package.json"
done

echo "building @verefwork/cli"
cp -R npm/cli "$out/cli"
VERSION="$version" node -e '
  const fs = require("fs"), file = process.argv[1];
  const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
  pkg.version = process.env.VERSION;
  for (const dep of Object.keys(pkg.optionalDependencies)) pkg.optionalDependencies[dep] = process.env.VERSION;
  fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
' "$out/cli/package.json"
chmod +x "$out/cli/bin/veref"

if [ "$pack" = 1 ]; then
  for dir in "$out"/*/; do
    (cd "$dir" && npm pack --silent --pack-destination "$out" >/dev/null)
  done
  ls "$out"/*.tgz
fi
