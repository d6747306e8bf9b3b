#!/usr/bin/env bash
# Sends each of the PROMPTS bodies of hits.lua once, so that they are cached.
set -euo pipefail
url=$1; n=${PROMPTS:-1000}
for i in $(seq 1 "$n"); do
  printf '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a support assistant for Acme."},{"role":"user","content":"Question number %d: how do I configure feature %d on my router?"}],"temperature":0}' "$i" "$i"
  printf '\n'
done | xargs -d '\n' -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' "$url/v1/chat/completions" \
  -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench-tenant' -d '{}' | sort | uniq -c
