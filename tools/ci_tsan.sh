#!/usr/bin/env bash
# The ThreadSanitizer stage of CI (.ci/run runs it after ci_sanitize.sh):
# Debian's clang builds the library, programs and tests with TSan, and every
# test runs on it except the crash test (it forks a multi-threaded process
# a hundred times, which TSan does not support; ASan covers it). A race
# stops the test (halt_on_error), so CI fails.
#
# Debian's abseil is not built for TSan: cmake/TsanAbseil.cmake links
# tools/tsan/absl_annotations.cc into every program so that TSan sees each
# absl::Mutex, and the tsan_canary tests check that a plain race is still
# caught and that a lock is not reported. tools/tsan/suppressions.txt lists,
# with reasons, the uninstrumented libraries TSan is told not to judge.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-tsan
bash tools/clang_build.sh "$build" thread

# Thread leaks are not reported: tests that simulate a crash leave the
# process with _exit while the cache's threads still run.
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 report_thread_leaks=0 suppressions=$PWD/tools/tsan/suppressions.txt"
(cd "$build" && ctest --output-on-failure --parallel "$(nproc)" --timeout 900 \
  -E '^(install_consumer|CrashTest\..*)$')
echo "ci_tsan: ok"
