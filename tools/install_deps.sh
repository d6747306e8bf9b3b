#!/usr/bin/env bash
# Installs the Debian 12 packages promptcache builds and tests with.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(cmake ninja-build g++ pkg-config
  librocksdb-dev libfaiss-dev libxxhash-dev libabsl-dev libgtest-dev libgmock-dev
  libbenchmark-dev libcurl4-openssl-dev nlohmann-json3-dev libcli11-dev
  libcpp-httplib-dev libhiredis-dev redis-server)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# Node.js and npm run the tests with the official OpenAI and Anthropic SDKs
# (tests/sdk); most machines have them already.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing: nodejs npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
