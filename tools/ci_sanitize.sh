#!/usr/bin/env bash
# The sanitizer and fuzzing part of CI (.ci/run runs it after tools/test.sh):
#  1. Debian's clang builds everything with AddressSanitizer and
#     UndefinedBehaviorSanitizer, and the whole test suite runs on it (a
#     finding stops the test: -fno-sanitize-recover, abort_on_error);
#  2. each libFuzzer target (fuzz/) runs for FUZZ_SECONDS (default 20) from
#     its seed corpus (fuzz/corpus/<name>); a crash fails CI and leaves its
#     input in build-asan/fuzz-findings/ to turn into a regression test.
# ThreadSanitizer runs in its own stage (tools/ci_tsan.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/install_clang.sh
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
