#!/usr/bin/env bash
# Installs dependencies, builds everything and runs every test (ctest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  -DPROMPTCACHE_WERROR="${PROMPTCACHE_WERROR:-ON}"
cmake --build build --parallel "$(nproc)"
cd build
ctest --output-on-failure --parallel "$(nproc)" --timeout 900
