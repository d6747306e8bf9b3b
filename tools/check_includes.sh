#!/usr/bin/env bash
# Checks the dependency rules of docs/ARCHITECTURE.md ("Module map"): which
# part of src/ may include which, that public headers include only public
# headers, that the core needs neither libcurl nor cpp-httplib, and that the
# programs in tools/ and examples/ use public headers only.
#   tools/check_includes.sh [source-dir]     (ctest: include_rules)
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

# Parts of src/ each part may include besides itself and include/promptcache.
declare -A allowed=(
  [util]=""
  [request]="util"
  [cost]="util request"
  [ledger]=""
  [store]="util ledger"
  [semantic]="util"
  [cache]="util request cost store ledger semantic"
  [client]="request"
  [http]="util request cost"
  [proxy]="util http"
)
# src/embed holds one file per embedder, and each belongs to a component.
declare -A embed_allowed=(
  [builtin_embedder]="semantic"                  # core
  [http_embedder]="util cost http"               # promptcache::http
  [model2vec_embedder]="util embed"              # promptcache::model2vec
  [safetensors]="util embed"
  [tokenizer]="util embed"
  [unicode]="util embed"
  [unicode_data]="util embed"
)
# Programs that still reach internals, each with its reason. Nothing else
# in tools/ or examples/ may.
declare -A program_exceptions=(
)

failures=0
fail() { echo "include rule: $*" >&2; failures=$((failures + 1)); }

# Project headers a file includes: the first path component of each.
parts_of() {
  grep -o '^#include "[a-z0-9_]*/' "$1" | sed 's/#include "//; s/\/$//' | sort -u
}

for file in src/*/*.cc src/*/*.h; do
  part=$(basename "$(dirname "$file")")
  stem=$(basename "$file"); stem=${stem%.*}
  if [ "$part" = embed ]; then
    ok=${embed_allowed[$stem]-unknown}
    if [ "$ok" = unknown ]; then
      fail "$file: src/embed file with no rule"
      continue
    fi
  else
    if [ -z "${allowed[$part]+x}" ]; then
      fail "$file: part '$part' has no rule"
      continue
    fi
    ok=${allowed[$part]}
  fi
  for dep in $(parts_of "$file"); do
    case "$dep" in
      promptcache|absl|nlohmann|rocksdb|faiss|gtest|gmock|CLI) continue ;;
    esac
    if [ "$dep" != "$part" ] && [ -d "src/$dep" ] && [[ " $ok " != *" $dep "* ]]; then
      fail "$file includes $dep/ (allowed: ${ok:-none})"
    fi
  done
done

# The core: no HTTP libraries.
core_files=$(ls src/{util,request,cost,ledger,store,semantic,cache,client}/* \
  src/embed/builtin_embedder.cc)
for file in $core_files; do
  if grep -qE '#include [<"](curl/|httplib)' "$file"; then
    fail "$file (core) includes an HTTP library"
  fi
done
for file in src/http/* src/embed/http_embedder.cc; do
  if grep -qE '#include [<"]httplib' "$file"; then
    fail "$file (promptcache::http) includes cpp-httplib"
  fi
done

# Public headers include public headers only.
for file in include/promptcache/*.h; do
  for dep in $(parts_of "$file"); do
    case "$dep" in promptcache|absl) ;; *) fail "$file includes $dep/" ;; esac
  done
done

# Programs: public headers only, unless excepted above.
for file in tools/*.cc tools/*.h tools/cli/*.cc tools/cli/*.h examples/*.cc; do
  for dep in $(parts_of "$file"); do
    case "$dep" in promptcache|absl|nlohmann|CLI) continue ;; esac
    if [ -d "src/$dep" ] &&
       [[ " ${program_exceptions[$file]-} " != *" $dep "* ]]; then
      fail "$file includes the internal $dep/ (programs use include/promptcache)"
    fi
  done
done

if [ "$failures" -gt 0 ]; then
  echo "check_includes: $failures rule(s) broken (docs/ARCHITECTURE.md, Module map)" >&2
  exit 1
fi
echo "check_includes: ok"
