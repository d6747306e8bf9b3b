#!/usr/bin/env bash
# The sanitizer and fuzzing part of CI (.ci/run runs it after tools/test.sh):
#  1. Debian's clang builds everything with AddressSanitizer and
#     UndefinedBehaviorSanitizer, and the whole test suite runs on it (a
#     finding stops the test: -fno-sanitize-recover, abort_on_error);
#  2. each libFuzzer target (fuzz/) runs for FUZZ_SECONDS (default 20) from
#     its seed corpus (fuzz/corpus/<name>); a crash fails CI and leaves its
#     input in build-asan/fuzz-findings/ to turn into a regression test.
# ThreadSanitizer is not run: Debian's abseil is not built for it, so every
# absl::Mutex would look like a race (see docs/bad-inputs.md).
set -euo pipefail
cd "$(dirname "$0")/.."
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
build=build-asan
# -O1 with line tables: what sanitizers need for readable reports, at a
# fraction of a full -O2 -g build's time on CI's two cores.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DPROMPTCACHE_SANITIZE=address,undefined -DPROMPTCACHE_FUZZ=ON \
  -DPROMPTCACHE_WERROR=ON -DPROMPTCACHE_BUILD_BENCH=OFF \
  -DPROMPTCACHE_BUILD_EXAMPLES=OFF
cmake --build "$build" --parallel "$(nproc)"

# Container-overflow checks need every library instrumented (Debian's are
# not); leaks are checked.
export ASAN_OPTIONS=abort_on_error=1:detect_container_overflow=0:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The install-consumer test builds a plain program against the library,
# which cannot link an instrumented one.
(cd "$build" && ctest --output-on-failure --parallel "$(nproc)" --timeout 900 \
  -E '^install_consumer$')

# Inputs that once crashed a fuzzer must stay harmless.
for found in fuzz/regressions/*/*; do
  "$build/fuzz/$(basename "$(dirname "$found")")" "$found"
done

seconds=${FUZZ_SECONDS:-20}
mkdir -p "$build/fuzz-findings"
for seeds in fuzz/corpus/*/; do
  name=$(basename "$seeds")
  scratch="$build/fuzz-corpus/$name"
  mkdir -p "$scratch"
  echo "fuzzing $name for ${seconds}s"
  "$build/fuzz/$name" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-findings/$name-" "$scratch" "$seeds"
done
echo "ci_sanitize: ok"
