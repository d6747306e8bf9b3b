#!/usr/bin/env bash
# promptcache-proxy in one minute: a stub paid upstream (tests/sdk, node) and
# the proxy on free 127.0.0.1 ports, then OpenAI and Anthropic calls with
# curl, showing what was served from where and what it saved.
#   bash tools/proxy_demo.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
cmake --build "$build" --target promptcache_proxy_bin >/dev/null
work=$(mktemp -d /tmp/promptcache-proxy-demo-XXXXXX)
proxy_pid=""
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_for() {  # file -> the URL it announces
  for _ in $(seq 200); do
    grep -q listening "$1" 2>/dev/null && break
    sleep 0.05
  done
  grep -o 'http://[0-9.:]*' "$1"
}
node tests/sdk/stub_upstream.mjs >"$work/stub.out" &
stub=$(wait_for "$work/stub.out")
env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY "$build/tools/promptcache-proxy" \
  --db "$work/db" --listen 127.0.0.1:0 --openai-base-url "$stub" \
  --anthropic-base-url "$stub" --access-log "$work/access.log" \
  >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
proxy=$(wait_for "$work/proxy.out")
echo "stub upstream $stub, promptcache-proxy $proxy"
echo

upstream_calls() { curl -s "$stub/__stats" | sed -E 's/.*"calls":([0-9]+).*/\1/'; }
header() { grep -i "^$1:" "$work/h" | tr -d '\r' | cut -d' ' -f2; }
printf '%-52s %-13s %-10s %-13s %s\n' "request" "status" "upstream" "saved USD" "answer"
call() {  # label path key body [header]
  local label=$1 path=$2 key=$3 body=$4 extra=${5:-x-demo: 1}
  curl -s -D "$work/h" -o "$work/b" "$proxy$path" -H 'content-type: application/json' \
    -H "authorization: Bearer $key" -H 'anthropic-version: 2023-06-01' \
    -H "$extra" -d "$body"
  local answer
  answer=$(grep -o 'Answer #[0-9]*' "$work/b" | head -1 || true)
  if [ -z "$answer" ] && grep -q '^data:' "$work/b"; then answer="(relayed as it streamed)"; fi
  printf '%-52s %-13s %-10s %-13s %s\n' "$label" "$(header x-promptcache-status)" \
    "$(upstream_calls) calls" "$(header x-promptcache-saved-usd || true)" "$answer"
}
chat() {  # text [stream]
  printf '{"model":"gpt-4o","stream":%s,"messages":[{"role":"system","content":"You are the Acme support assistant."},{"role":"user","content":"%s"}]}' "${2:-false}" "$1"
}
call "chat: How do I reset my password?" /v1/chat/completions sk-acme "$(chat 'How do I reset my password?')"
call "chat: the same again" /v1/chat/completions sk-acme "$(chat 'How do I reset my password?')"
call "chat: how can I reset my password" /v1/chat/completions sk-acme "$(chat 'how can I reset my password')"
call "chat: ...reset my password on 2 devices? (look-alike)" /v1/chat/completions sk-acme "$(chat 'How do I reset my password on 2 devices?')"
call "chat, another tenant's key: the same question" /v1/chat/completions sk-globex "$(chat 'How do I reset my password?')"
call "chat streamed: Write a haiku about caches" /v1/chat/completions sk-acme "$(chat 'Write a haiku about caches' true)"
call "chat streamed again (replayed as SSE)" /v1/chat/completions sk-acme "$(chat 'Write a haiku about caches' true)"
call "chat with x-promptcache-refresh: true" /v1/chat/completions sk-acme "$(chat 'How do I reset my password?')" 'x-promptcache-refresh: true'
claude='{"model":"claude-sonnet-4-5","max_tokens":300,"system":"Be brief.","messages":[{"role":"user","content":"Name three prime numbers"}]}'
call "anthropic: Name three prime numbers" /v1/messages sk-ant-acme "$claude"
call "anthropic: the same again" /v1/messages sk-ant-acme "$claude"
echo
echo "Savings by backend and model (from $proxy/metrics):"
curl -s "$proxy/metrics" | grep -E '^promptcache_dollars_(saved|spent)_total' | sed 's/^/  /'
kill -TERM "$proxy_pid"
wait "$proxy_pid" && echo "proxy stopped cleanly on SIGTERM (exit 0)"
proxy_pid=""
if grep -q -e sk-acme -e sk-globex -e sk-ant-acme -r "$work/db" "$work/access.log"; then
  echo "ERROR: an API key reached the database or the access log" >&2
  exit 1
fi
echo "No API key in the database or the access log ($work)."
