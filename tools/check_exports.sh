#!/usr/bin/env bash
# A shared build exports the public API only: no internal namespace, no
# implementation class, no third-party code linked in from static archives.
#   tools/check_exports.sh <build dir of a -DBUILD_SHARED_LIBS=ON build>
set -euo pipefail
build=$1
status=0
# One public entry point each library must export: the check reads real
# symbol tables. (grep reads a captured string: `nm | c++filt | grep -q`
# fails under pipefail when grep exits first.)
declare -A required=(
  [promptcache]='promptcache::Cache::Open('
  [promptcache_http]='promptcache::HttpModelClient::Create('
  [promptcache_model2vec]='promptcache::Model2VecEmbedder::Load('
  [promptcache_proxy]='promptcache::ProxyServer::Create(')
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
  grep -qF "${required[$lib]}" <<<"$exported" ||
    { echo "check_exports: lib$lib.so does not export ${required[$lib]}" >&2; status=1; }
done
[ "$status" = 0 ] && echo "check_exports: ok"
exit "$status"
