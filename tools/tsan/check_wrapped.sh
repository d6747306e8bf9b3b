#!/usr/bin/env bash
# Every absl::Mutex / CondVar / Notification function that our objects call
# has a wrapper in absl_annotations.cc: an unwrapped one (a new
# LockWhenWithTimeout, say) would link and run with TSan blind to it.
#   tools/tsan/check_wrapped.sh <TSan build dir>
set -euo pipefail
build=$1
here=$(dirname "$0")
wrapped=$(grep -o '__wrap_[A-Za-z0-9_]*(' "$here/absl_annotations.cc" |
          sed 's/^__wrap_//; s/($//' | sort -u)
objects=$(find "$build" -name '*.o' ! -name 'absl_annotations.cc.o')
[ -n "$objects" ] || { echo "check_wrapped: no objects in $build" >&2; exit 1; }
# Destructors of Notification/CondVar, assertions and debug switches take no
# lock that orders our data.
called=$(nm -u $objects 2>/dev/null | awk '{print $2}' |
         grep -E '^_ZN?K?4absl7debian3(5Mutex|7CondVar|12Notification)' |
         grep -vE '(12Notification|7CondVar)D[12]Ev$|Assert|HasBeenNotifiedInternal|Debug|ForgetDeadlockInfo' |
         sort -u || true)
[ -n "$called" ] || { echo "check_wrapped: no abseil lock calls found" >&2; exit 1; }
missing=$(comm -23 <(echo "$called") <(echo "$wrapped"))
if [ -n "$missing" ]; then
  echo "check_wrapped: called without a TSan wrapper:" >&2
  c++filt <<<"$missing" >&2
  exit 1
fi
echo "check_wrapped: ok ($(wc -l <<<"$called") abseil lock functions called, all wrapped)"
