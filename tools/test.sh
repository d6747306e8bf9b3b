#!/usr/bin/env bash
# Installs dependencies, builds everything and runs every test (ctest).
# Release by default, the build users make (BUILD_TYPE=RelWithDebInfo or
# Debug for others); warnings are errors here (PROMPTCACHE_WERROR=OFF not).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
  -DPROMPTCACHE_WERROR="${PROMPTCACHE_WERROR:-ON}"
cmake --build build --parallel "$(nproc)"
cd build
ctest --output-on-failure --parallel "$(nproc)" --timeout 900
