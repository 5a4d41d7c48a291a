#!/usr/bin/env bash
# CI check of the npm distribution, as a user gets it: build and pack every
# package, `npm install -g` the tarballs into a temporary prefix (offline:
# nothing comes from the registry), then run the installed `veref` —
# --version, a usage error's exit code through the launcher, and whoami
# against `veref serve --dev` started from the same installed binary.
#   VEREF_NPM_TARGETS="linux/amd64" npm/test-install.sh   # fewer targets, for a quick local run
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work=$(mktemp -d)
srv=""
cleanup() { [ -z "$srv" ] || kill "$srv" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

version="0.0.0-ci.$(git rev-parse --short=12 HEAD)"
bash npm/build.sh --version "$version" --out "$work/dist" --pack ${VEREF_NPM_TARGETS:+--targets "$VEREF_NPM_TARGETS"}

host=$(node -p 'process.platform + "-" + process.arch')
npm install -g --prefix "$work/prefix" --offline --no-audit --no-fund \
  "$work/dist/verefwork-cli-$host-$version.tgz" "$work/dist/verefwork-cli-$version.tgz" >/dev/null
veref="$work/prefix/bin/veref"
[ -x "$veref" ] || { echo "npm installed no veref command"; exit 1; }

got=$("$veref" --version)
[ "$got" = "veref $version" ] || { echo "veref --version said '$got', not 'veref $version'"; exit 1; }
echo "ok: $got"

set +e
"$veref" whoami --no-such-flag 2>/dev/null
code=$?
set -e
[ "$code" = 2 ] || { echo "a usage error exited $code through the launcher, not 2"; exit 1; }
echo "ok: exit codes pass through the launcher"

VEREF_DATABASE_URL="sqlite:$work/dev.db" "$veref" serve --dev --addr 127.0.0.1:0 >"$work/serve.log" 2>&1 &
srv=$!
url=""
for _ in $(seq 1 150); do
  url=$(sed -n 's/^veref listening on \(http[^ ]*\).*/\1/p' "$work/serve.log" | head -1)
  [ -n "$url" ] && break
  sleep 0.2
done
[ -n "$url" ] || { echo "serve --dev did not start:"; cat "$work/serve.log"; exit 1; }
key=$(sed -n 's/^VEREF_API_KEY=\(vrf_test_[^ ]*\)$/\1/p' "$work/serve.log" | head -1)
[ -n "$key" ] || { echo "serve --dev printed no key"; exit 1; }

out=$(VEREF_API_URL="$url" VEREF_API_KEY="$key" "$veref" whoami -o json)
echo "$out" | node -e '
  const me = JSON.parse(require("fs").readFileSync(0, "utf8"));
  if (me.tenantId !== "demo" || me.credentialSource !== "env") { console.error("unexpected whoami:", me); process.exit(1); }
'
echo "ok: veref whoami against $url"

# A supervisor's SIGTERM goes to the launcher: the server must stop with it,
# not be left running without a parent.
bin_pid=$(pgrep -P "$srv" | head -1)
[ -n "$bin_pid" ] || { echo "the launcher runs no veref binary"; exit 1; }
kill -TERM "$srv"
set +e; wait "$srv"; set -e
srv=""
for _ in $(seq 1 100); do kill -0 "$bin_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$bin_pid" 2>/dev/null; then
  kill "$bin_pid"
  echo "SIGTERM to the launcher left veref serve running"; exit 1
fi
echo "ok: SIGTERM to the launcher stops veref serve"
