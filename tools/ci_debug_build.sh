#!/usr/bin/env bash
# CI: the Debug build (-O0 -g) of the library, its components, the programs
# and the examples compiles without a warning (-Werror), as the Release build
# of tools/test.sh does with everything. Tests run on the Release build and
# on the sanitizer build (tools/ci_sanitize.sh); here it is the compile.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build-debug -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DPROMPTCACHE_WERROR=ON -DPROMPTCACHE_BUILD_TESTS=OFF \
  -DPROMPTCACHE_BUILD_BENCH=OFF
cmake --build build-debug --parallel "$(nproc)"
echo "ci_debug_build: ok"
