// What the parts of Cache::Impl (cache.cc, open.cc, stats_flush.cc,
// budget.cc, maintenance.cc, semantic_tier.cc, ...) share: metadata keys,
// the memory budget's split and small ledger helpers.
#ifndef PROMPTCACHE_SRC_CACHE_CACHE_INTERNAL_H_
#define PROMPTCACHE_SRC_CACHE_CACHE_INTERNAL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "promptcache/ledger.h"
#include "promptcache/request.h"
#include "request/namespace.h"
#include "store/store.h"
#define XXH_STATIC_LINKING_ONLY
#include "xxhash.h"

namespace promptcache::internal {

inline constexpr char kSchemaKey[] = "schema_version";
// The last schema whose ledger keys were NUL-joined; Open migrates it.
inline constexpr char kLedgerKeysV1Schema[] = "1";
inline constexpr char kCreatedKey[] = "created_us";
inline constexpr int kPurgeBatch = 1000;
// Hit counters written per batch by the stats flush (see FlushStatsLocked).
inline constexpr size_t kStatsChunk = 4096;
// Set when every entry's hit-counter record carries its budgeted size
// (EntryStats version 2): new databases, and older ones after a one-time
// scan when first opened with a byte budget.
inline constexpr char kSizedStatsKey[] = "entry_stats_sized";
// Index share per vector beyond its floats: HNSW links (M=16: 32 level-0
// neighbours of 4 bytes, plus upper levels) and bookkeeping.
inline constexpr int64_t kIndexOverheadPerVector = 192;

// The ledger row of `map` at `key`, named after its namespace, backend and
// model when new (LedgerRow::Add sums counters only).
template <typename Map, typename Key>
LedgerRow& NamedRow(Map& map, const Key& key, absl::string_view ns,
                    absl::string_view backend, absl::string_view model) {
  LedgerRow& row = map[key];
  if (row.backend.empty()) {
    row.ns = std::string(ns);
    row.backend = std::string(backend);
    row.model = std::string(model);
  }
  return row;
}

inline uint64_t RowHash(absl::string_view ns, absl::string_view backend,
                        absl::string_view model) {
  // Each field hashed on its own, seeded with the hash so far, so that
  // ("ab","c") and ("a","bc") differ. One-shot XXH3 of short strings: this
  // runs on every hit.
  uint64_t h = XXH3_64bits(ns.data(), ns.size());
  h = XXH3_64bits_withSeed(backend.data(), backend.size(), h);
  return XXH3_64bits_withSeed(model.data(), model.size(), h);
}

// The memtables' share of the memory budget: a quarter, within 4-32 MiB
// (more buys little for a cache's small writes).
inline size_t MemtableBytes(size_t block_cache_bytes) {
  return std::clamp(block_cache_bytes / 4, size_t{4} << 20, size_t{32} << 20);
}

// What the hot answers must leave to RocksDB's own blocks (index, filter
// and data blocks being read): an eighth of the budget, at most 32 MiB.
inline size_t MinBlockBytes(size_t block_cache_bytes) {
  return std::min(block_cache_bytes / 8, size_t{32} << 20);
}

// What the budget keeps for RocksDB whatever the hot answers hold: the
// memtables and room for blocks.
inline size_t RocksDbFloor(size_t block_cache_bytes) {
  return MemtableBytes(block_cache_bytes) + MinBlockBytes(block_cache_bytes);
}

// Bytes of the budget the hot answers may take.
inline size_t HotRoom(size_t block_cache_bytes) {
  return block_cache_bytes -
         std::min(block_cache_bytes, RocksDbFloor(block_cache_bytes));
}

inline bool IsTemperaturePositive(const Request& r) {
  return r.params.temperature.value_or(1.0) > 0;
}

inline absl::Time FromMicros(int64_t us, absl::Time if_zero) {
  return us == 0 ? if_zero : absl::FromUnixMicros(us);
}

}  // namespace promptcache::internal

namespace promptcache {

// The names the parts of Cache::Impl use unqualified (this header is
// included only by src/cache/).
using internal::AsView;
using internal::Family;
using internal::Found;
using internal::FromMicros;
using internal::HotRoom;
using internal::IsTemperaturePositive;
using internal::kCreatedKey;
using internal::KeyBytes;
using internal::kIndexOverheadPerVector;
using internal::kLedgerKeysV1Schema;
using internal::kPurgeBatch;
using internal::kSchemaKey;
using internal::kSizedStatsKey;
using internal::kStatsChunk;
using internal::MemtableBytes;
using internal::MinBlockBytes;
using internal::NamedRow;
using internal::NamespaceOf;
using internal::Prefixed;
using internal::RocksDbFloor;
using internal::RowHash;
using internal::StoreBatch;
using internal::StoreIterator;
using internal::StoreReadOptions;
using internal::StoreView;

}  // namespace promptcache

#endif  // PROMPTCACHE_SRC_CACHE_CACHE_INTERNAL_H_
