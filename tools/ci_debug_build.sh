#!/usr/bin/env bash
# CI: the Debug build (-O0 -g) of the library, its components, the programs
# and the examples compiles without a warning (-Werror), as the Release build
# of tools/test.sh does with everything. It is a shared build: the programs
# and examples link against the exported API only, tools/check_exports.sh
# checks that nothing internal is exported, and the install-consumer test
# runs against its installed tree. Tests run on the Release build and on the
# sanitizer builds (tools/ci_sanitize.sh, ci_tsan.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build-debug -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DBUILD_SHARED_LIBS=ON -DPROMPTCACHE_WERROR=ON \
  -DPROMPTCACHE_BUILD_TESTS=OFF -DPROMPTCACHE_BUILD_BENCH=OFF
cmake --build build-debug --parallel "$(nproc)"
bash tools/check_exports.sh build-debug
bash tests/install_consumer_test.sh "$PWD/build-debug" "$PWD"
echo "ci_debug_build: ok"
