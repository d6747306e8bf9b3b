#!/usr/bin/env bash
# The promptcache-proxy program: config file, flags over config, clear
# errors for bad settings, /healthz, SIGTERM -> exit 0.
#   tests/proxy/proxy_cli_test.sh <promptcache-proxy>
set -euo pipefail
bin=$1
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Settings from a config file; a flag overrides the file.
cat >"$work/proxy.toml" <<CONF
db = "$work/db"
listen = "127.0.0.1:1"
openai-base-url = "http://127.0.0.1:9"
access-log = "$work/access.log"
max-connections = 4
max-mb = 64
eviction = "lfu"
CONF
"$bin" --config "$work/proxy.toml" --listen 127.0.0.1:0 >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 200); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/out") || fail "no listening line: $(cat "$work/err")"
[ "${url##*:}" != 1 ] || fail "the --listen flag did not override the config file"
[ "$(curl -s "$url/healthz")" = ok ] || fail "/healthz"
# The upstream from the config (nothing listens on port 9): a provider-format
# 502, not a hang or a crash.
code=$(curl -s -o "$work/body" -w '%{http_code}' "$url/v1/chat/completions" \
  -H 'content-type: application/json' -H 'authorization: Bearer sk-cli-test' \
  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}')
[ "$code" = 502 ] || fail "expected 502 for an unreachable upstream, got $code: $(cat "$work/body")"
grep -q '"error"' "$work/body" || fail "error body not in OpenAI format: $(cat "$work/body")"
# The upstream's address is the operator's business: in the access log, not
# in what clients see (issue 14).
grep -q '127.0.0.1:9' "$work/body" && fail "error names the upstream: $(cat "$work/body")"
grep -q 'upstream call failed' "$work/body" || fail "error does not say the upstream failed: $(cat "$work/body")"
kill -TERM "$pid"
wait "$pid" || fail "exit code $? after SIGTERM"
pid=""
[ -d "$work/db" ] || fail "the db from the config file was not created"
grep -q '"status":502' "$work/access.log" || fail "access log has no 502 line"
grep -q '127.0.0.1:9' "$work/access.log" || fail "access log does not name the upstream"
grep -q 'sk-cli-test' "$work/access.log" "$work/err" && fail "the key reached a log"

# 2. Bad settings: exit 2 (usage) with a message naming the setting.
expect_usage_error() {  # pattern args...
  local pattern=$1
  shift
  set +e
  "$bin" "$@" >"$work/out" 2>"$work/err"
  local code=$?
  set -e
  [ "$code" = 2 ] || [ "$code" = 105 ] || [ "$code" = 106 ] ||
    fail "expected a usage error for '$*', got exit $code"
  grep -qi -- "$pattern" "$work/err" "$work/out" ||
    fail "message for '$*' does not mention '$pattern': $(cat "$work/err")"
}
expect_usage_error "db" --listen 127.0.0.1:0
expect_usage_error "listen" --db "$work/db2" --listen nonsense
expect_usage_error "base_url" --db "$work/db2" --listen 127.0.0.1:0 --openai-base-url ftp://x
expect_usage_error "embedder" --db "$work/db2" --listen 127.0.0.1:0 --embedder wordvec
expect_usage_error "namespace-mode" --db "$work/db2" --namespace-mode everyone
printf 'db = "%s"\nlisten = "127.0.0.1:0"\nmax-body-byts = 10\n' "$work/db3" >"$work/typo.toml"
expect_usage_error "max-body-byts\|max_body_byts\|extra" --config "$work/typo.toml"
expect_usage_error "eviction" --db "$work/db2" --eviction random
expect_usage_error "max-prompt-bytes" --db "$work/db2" --listen 127.0.0.1:0 --max-prompt-bytes -5
echo "proxy_cli_test: ok"
