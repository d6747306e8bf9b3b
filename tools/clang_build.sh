#!/usr/bin/env bash
# Builds the project with Debian's clang 14 and sanitizers, as the sanitizer
# stages of CI do (tools/ci_sanitize.sh, ci_tsan.sh); installs clang and its
# sanitizer and libFuzzer runtimes first if they are missing.
#   tools/clang_build.sh <build dir> <sanitizers> [more cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$1
sanitizers=$2
shift 2
bash tools/install_deps.sh
need=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
# -O1 with line tables: what sanitizers need for readable reports, at a
# fraction of a full -O2 -g build's time on CI's two cores.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DPROMPTCACHE_SANITIZE="$sanitizers" -DPROMPTCACHE_WERROR=ON \
  -DPROMPTCACHE_BUILD_BENCH=OFF -DPROMPTCACHE_BUILD_EXAMPLES=OFF "$@"
cmake --build "$build" --parallel "$(nproc)"
