#!/usr/bin/env bash
# End-to-end tests of promptcache-proxy with the official OpenAI and Anthropic
# SDKs (Node) against a stub upstream on 127.0.0.1.
#
# Usage: tests/sdk/run_sdk_tests.sh <proxy-binary> <work-dir>
#   Copies the test files into <work-dir>, installs the pinned SDKs there with
#   `npm ci` (only when node_modules is missing or was installed from another
#   package-lock.json), and runs every *.test.mjs with PROXY_BIN=<proxy-binary>.
#   Exits non-zero on any failure. KEEP_PROXY_DIRS=1 keeps each proxy's --db
#   directory and access log (under $TMPDIR) for inspection.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 <proxy-binary> <work-dir>" >&2
  exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
proxy_bin="$1"
work_dir="$2"

if [[ ! -f "$proxy_bin" || ! -x "$proxy_bin" ]]; then
  echo "run_sdk_tests: proxy binary '$proxy_bin' does not exist or is not executable" >&2
  exit 2
fi
proxy_bin="$(cd "$(dirname "$proxy_bin")" && pwd)/$(basename "$proxy_bin")"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "run_sdk_tests: node and npm are required (Node >= 20)" >&2
  exit 2
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 20 )); then
  echo "run_sdk_tests: Node >= 20 is required, found $(node --version)" >&2
  exit 2
fi

mkdir -p "$work_dir"
work_dir="$(cd "$work_dir" && pwd)"
cp "$here/package.json" "$here/package-lock.json" "$work_dir/"
rm -f "$work_dir"/*.mjs
cp "$here"/*.mjs "$work_dir/"

cd "$work_dir"
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.run_sdk_tests.lock.sha256"
if [[ ! -d node_modules || ! -f "$stamp" || "$(cat "$stamp")" != "$lock_sum" ]]; then
  echo "run_sdk_tests: npm ci in $work_dir"
  npm ci --no-audit --no-fund
  echo "$lock_sum" > "$stamp"
fi

echo "run_sdk_tests: node $(node --version), proxy $proxy_bin"
shopt -s nullglob
tests=(*.test.mjs)
if (( ${#tests[@]} == 0 )); then
  echo "run_sdk_tests: no *.test.mjs in $work_dir" >&2
  exit 1
fi
# Keys from the caller's environment must not reach the proxy or the SDKs.
env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u ANTHROPIC_AUTH_TOKEN \
  PROXY_BIN="$proxy_bin" node --test --test-concurrency=1 "${tests[@]}"
