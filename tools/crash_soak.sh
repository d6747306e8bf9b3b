#!/usr/bin/env bash
# Longer crash soak than CI's (tests/cache/crash_test.cc runs 100 kills there):
#   tools/crash_soak.sh [KILLS] [BUILD_DIR]
# A child process works the cache and is killed with SIGKILL at random
# moments; after each kill every acknowledged write must be there, the
# ledger must add up to the entries, and the index must agree with the store.
set -euo pipefail
kills=${1:-2000}
build=${2:-build}
PROMPTCACHE_CRASH_KILLS=$kills exec "$build/tests/crash_test"
