#!/usr/bin/env bash
# Reads the reports ThreadSanitizer wrote (TSAN_OPTIONS log_path) and fails
# on each one that is ours:
#  - a data race whose two racing accesses were both made from our code
#    (each access's stack has a frame in this source tree: src/, tools/,
#    tests/, include/);
#  - any other report (lock-order inversion, use after free, a bad unlock)
#    with a frame of ours.
# A race with one side entirely in a library's own thread (RocksDB's
# background work, httplib's pool) is that library's synchronisation, which
# TSan cannot see: Debian's libraries are not instrumented, and their
# threads run template code instantiated in our binaries. Those are counted
# and listed, not failed.
#   tools/tsan/judge_reports.sh <source dir> <report file>...
set -euo pipefail
src=$(cd "$1" && pwd)
shift
[ "$#" -gt 0 ] || { echo "judge_reports: no report files" >&2; exit 1; }
awk -v src="$src" '
  function ours(line) {
    return index(line, src "/src/") || index(line, src "/tools/") ||
           index(line, src "/tests/") || index(line, src "/include/")
  }
  function finish() {
    if (kind == "") return
    real = 0
    if (kind ~ /data race/) real = (stacks >= 2 && own[1] && own[2])
    else real = any_own
    if (real) { mine++; print "OURS: " FILENAME ": " kind; print text }
    else { foreign++; summary[kind " | " top] ++ }
    kind = ""
  }
  /^WARNING: ThreadSanitizer: / {
    finish(); kind = $0; sub(/^WARNING: ThreadSanitizer: /, "", kind)
    sub(/ \(pid=[0-9]+\)/, "", kind)
    stacks = 0; any_own = 0; in_access = 0; delete own; text = ""; top = ""
    next
  }
  kind == "" { next }
  /^==================$/ { finish(); next }
  { text = text "\n" $0 }
  # An access header opens a stack; any other header (where the memory was
  # allocated, which thread made it) closes it.
  /^  (Previous )?(Atomic )?(read|write|Read|Write)/ {
    stacks++; own[stacks] = 0; in_access = 1; next
  }
  /^  [A-Z]/ { in_access = 0; next }
  /^    #[0-9]+ / {
    if (top == "" && stacks == 1) top = $0
    if (ours($0)) { any_own = 1; if (in_access) own[stacks] = 1 }
  }
  END {
    finish()
    printf("judge_reports: %d report(s) of ours, %d inside libraries\n", mine, foreign)
    for (k in summary) printf("  library: %d x %s\n", summary[k], substr(k, 1, 200))
    exit mine > 0
  }
' "$@"
