#!/usr/bin/env bash
# Load benchmark of the proxy's hit path over loopback:
#   bash bench/proxy/run.sh [build-dir]
# Starts the stub upstream (node) and promptcache-proxy on free ports,
# caches PROMPTS distinct prompts, then runs wrk against them (all hits).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
cmake --build "$build" --target promptcache_proxy_bin >/dev/null
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
node tests/sdk/stub_upstream.mjs > "$work/stub.out" &
for _ in $(seq 100); do grep -q listening "$work/stub.out" 2>/dev/null && break; sleep 0.05; done
stub=$(grep -o 'http://[0-9.:]*' "$work/stub.out")
env -u OPENAI_API_KEY "$build/tools/promptcache-proxy" --db "$work/db" \
  --listen 127.0.0.1:0 --openai-base-url "$stub" \
  --max-connections "${CONNECTIONS:-32}" > "$work/proxy.out" 2> "$work/proxy.err" &
for _ in $(seq 100); do grep -q listening "$work/proxy.out" 2>/dev/null && break; sleep 0.05; done
proxy=$(grep -o 'http://[0-9.:]*' "$work/proxy.out")
echo "warm-up: caching ${PROMPTS:-1000} prompts"
bash bench/proxy/warm.sh "$proxy"
echo "wrk (${MODE:-exact} hits): ${THREADS:-1} thread(s), ${CONNECTIONS:-32} connections, ${DURATION:-15s}"
wrk -t "${THREADS:-1}" -c "${CONNECTIONS:-32}" -d "${DURATION:-15s}" --latency \
  -s bench/proxy/hits.lua "$proxy"
curl -s "$proxy/metrics" | grep -E '^promptcache_requests_total'
