#!/usr/bin/env bash
# Every test docs/bad-inputs.md names exists (a row without its test is a
# claim, not a fact).
#   tests/tools/bad_inputs_doc_test.sh <source dir> <build dir>
set -euo pipefail
src=$1
build=$2
# Every gtest defined in tests/, as Suite.Name.
listed=$(grep -ho 'TEST\(_F\)\?([A-Za-z0-9_]*, *[A-Za-z0-9_]*)' "$src"/tests/*/*.cc |
         sed 's/TEST\(_F\)\?(\([A-Za-z0-9_]*\), *\([A-Za-z0-9_]*\))/\2.\3/')
[ -n "$listed" ] || { echo "no tests found under $src/tests"; exit 1; }
: "$build"  # kept for the command line's shape
missing=0
for name in $(grep -o '`[A-Za-z0-9_]*\.[A-Za-z0-9_*]*`' "$src/docs/bad-inputs.md" |
              tr -d '`' | sort -u); do
  case "$name" in *.md|*.h|*.cc|*.sh) continue ;; esac
  pattern="^${name//\*/.*}$"
  if ! grep -qE "$pattern" <<<"$listed"; then
    echo "docs/bad-inputs.md names $name, which is not a test"
    missing=1
  fi
done
for fuzzer in $(grep -o 'fuzzer `[a-z_]*`' "$src/docs/bad-inputs.md" |
                sed 's/fuzzer `\(.*\)`/\1/' | sort -u); do
  [ -f "$src/fuzz/$fuzzer.cc" ] || { echo "no fuzzer $fuzzer"; missing=1; }
done
[ "$missing" = 0 ] && echo "bad_inputs_doc: ok"
exit "$missing"
