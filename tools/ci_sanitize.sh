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
build=build-asan
bash tools/clang_build.sh "$build" address,undefined -DPROMPTCACHE_FUZZ=ON

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
