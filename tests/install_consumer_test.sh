#!/usr/bin/env bash
# Installs the built tree into a temp prefix, then builds and runs separate
# CMake projects against it with find_package(promptcache [COMPONENTS ...]):
# the core alone (which must not need libcurl), the http, model2vec and
# proxy components, and no COMPONENTS (everything).
set -euo pipefail
build_dir="$1"; source_dir="$2"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
passed=0
# "proxy;model2vec": a component asked for before one it needs is loaded
# after it.
for components in "" "http" "model2vec" "http;model2vec" "proxy;model2vec"; do
  name=${components:-all}; name=${name//;/-}
  cmake -S "$source_dir/tests/install_consumer" -B "$work/build-$name" -G Ninja \
    -DCMAKE_PREFIX_PATH="$work/prefix" "-DPROMPTCACHE_COMPONENTS=$components" >/dev/null
  cmake --build "$work/build-$name" >/dev/null
  "$work/build-$name/consumer" "$work/db-$name" >/dev/null
  passed=$((passed + 1))
done
# The core is usable without libcurl: its library (static, or shared from a
# -DBUILD_SHARED_LIBS=ON build) has no curl symbols, and a core-only
# consumer's link line has no -lcurl.
core_lib=$(find "$work/prefix" -name 'libpromptcache.a' | head -1)
if [ -n "$core_lib" ]; then
  nm -u "$core_lib" > "$work/core.syms"
else
  core_lib=$(find "$work/prefix" -name 'libpromptcache.so' | head -1)
  [ -n "$core_lib" ] || { echo "FAIL: no libpromptcache installed" >&2; exit 1; }
  nm -D -u "$core_lib" > "$work/core.syms"
fi
grep -q 'U .*rocksdb' "$work/core.syms" ||
  { echo "FAIL: nm cannot read $core_lib" >&2; exit 1; }
if grep -q ' curl_' "$work/core.syms"; then
  echo "FAIL: libpromptcache.a refers to libcurl" >&2; exit 1
fi
grep -q curl "$work/build-model2vec/build.ninja" &&
  { echo "FAIL: a core + model2vec consumer links libcurl" >&2; exit 1; }
# A static http component must bring libcurl to its consumer's link (a
# shared one carries it itself).
if [[ "$core_lib" == *.a ]] && ! grep -q curl "$work/build-http/build.ninja"; then
  echo "FAIL: the http component does not bring libcurl" >&2; exit 1
fi
passed=$((passed + 1))
echo "installed package usable: $passed passed, 0 failed"
