#!/usr/bin/env bash
# Installs the built tree into a temp prefix, then builds and runs a separate
# CMake project against it with find_package(promptcache).
set -euo pipefail
build_dir="$1"; source_dir="$2"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/tests/install_consumer" -B "$work/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer" "$work/db"
echo "installed package usable: 1 passed, 0 failed"
