#!/usr/bin/env bash
# The ThreadSanitizer stage of CI (.ci/run runs it after ci_sanitize.sh):
# Debian's clang builds the library, programs and tests with TSan, and every
# test runs on it except the crash test (it forks a multi-threaded process
# a hundred times, which TSan does not support; ASan covers it). A race in
# our code fails CI (tools/tsan/judge_reports.sh, below).
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
bash tools/tsan/check_wrapped.sh "$build"

# Reports go to files and do not stop a test; tools/tsan/judge_reports.sh
# then fails CI on each one that is ours (both racing accesses made from our
# code) and lists those inside the uninstrumented libraries. Thread leaks
# are not reported: tests that simulate a crash leave with _exit while the
# cache's threads still run.
reports="$PWD/$build/tsan-reports"
rm -rf "$reports" && mkdir -p "$reports"
export TSAN_OPTIONS="halt_on_error=0 exitcode=0 second_deadlock_stack=1 report_thread_leaks=0 suppressions=$PWD/tools/tsan/suppressions.txt log_path=$reports/report"
(cd "$build" && ctest --output-on-failure --parallel "$(nproc)" --timeout 900 \
  -E '^(install_consumer|CrashTest\..*)$')
shopt -s nullglob
found=("$reports"/report.*)
if [ ${#found[@]} -gt 0 ]; then
  bash tools/tsan/judge_reports.sh . "${found[@]}"
else
  echo "ci_tsan: no TSan reports"
fi
echo "ci_tsan: ok"
