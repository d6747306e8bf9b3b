#!/usr/bin/env bash
# Installs dependencies, builds, and replays the bundled workload through the
# cache with a simulated paid upstream, then prints the savings report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}"
cmake --build build --parallel "$(nproc)" --target promptcache_demo promptcache_cli \
  promptcache_proxy_bin
db="${PROMPTCACHE_DEMO_DB:-$(mktemp -d /tmp/promptcache-demo-XXXXXX)/db}"
./build/examples/promptcache_demo --db "$db" "$@"
echo
echo "The same numbers from the CLI: ./build/tools/promptcache report $db"
./build/tools/promptcache report "$db"
echo
echo "The proxy (OpenAI/Anthropic-compatible) with a stub paid upstream:"
if command -v node >/dev/null; then
  bash tools/proxy_demo.sh build
else
  echo "(skipped: needs node for the stub upstream; see tools/proxy_demo.sh)"
fi
