#!/usr/bin/env bash
# Installs Debian's clang 14 and its sanitizer and libFuzzer runtimes, which
# the sanitizer stages of CI build with (tools/ci_sanitize.sh, ci_tsan.sh).
set -euo pipefail
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
