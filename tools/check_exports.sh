#!/usr/bin/env bash
# A shared build exports the public API only: no internal namespace, no
# implementation class, no third-party code linked in from static archives.
#   tools/check_exports.sh <build dir of a -DBUILD_SHARED_LIBS=ON build>
set -euo pipefail
build=$1
status=0
for lib in promptcache promptcache_http promptcache_model2vec promptcache_proxy; do
  so="$build/lib$lib.so"
  [ -f "$so" ] || { echo "check_exports: no $so" >&2; exit 1; }
  exported=$(nm -D --defined-only "$so" | c++filt)
  leaked=$(grep -E 'promptcache::(internal|wire|http)::|::Impl::|(rocksdb|faiss|nlohmann[a-z_0-9]*)::' <<<"$exported" || true)
  if [ -n "$leaked" ]; then
    echo "check_exports: lib$lib.so exports internals:" >&2
    head -20 <<<"$leaked" >&2
    status=1
  fi
done
# The check reads real tables: the public entry points are there. (grep
# reads a captured string: `nm | c++filt | grep -q` fails under pipefail
# when grep exits first.)
core=$(nm -D --defined-only "$build/libpromptcache.so" | c++filt)
http=$(nm -D --defined-only "$build/libpromptcache_http.so" | c++filt)
grep -q 'promptcache::Cache::Open(' <<<"$core" ||
  { echo "check_exports: Cache::Open is not exported" >&2; status=1; }
grep -q 'promptcache::HttpModelClient::Create(' <<<"$http" ||
  { echo "check_exports: HttpModelClient::Create is not exported" >&2; status=1; }
[ "$status" = 0 ] && echo "check_exports: ok"
exit "$status"
