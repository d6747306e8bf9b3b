// The column families of a cache's RocksDB database, in one place: their
// names and the options each needs. Opening, finishing a cut-short create,
// repairing and tests all build their descriptors here, so that a new
// family cannot be forgotten by one of them.
#ifndef PROMPTCACHE_SRC_STORE_STORE_FAMILIES_H_
#define PROMPTCACHE_SRC_STORE_STORE_FAMILIES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace promptcache::internal {

// The default family holds metadata (schema version, embedder, scope
// generations).
inline constexpr char kEntriesFamily[] = "entries";
inline constexpr char kLedgerFamily[] = "ledger";
inline constexpr char kVectorsFamily[] = "vectors";
inline constexpr char kSemanticHitsFamily[] = "semantic_hits";
inline constexpr char kFeedbackFamily[] = "feedback";
// Hit counters live apart from entries so that counting a hit writes a few
// bytes instead of rewriting the whole entry.
inline constexpr char kEntryStatsFamily[] = "entry_stats";
// Shared answer bodies: "b" + key -> text, "r" + key -> reference count.
// Added after the first release.
inline constexpr char kBodiesFamily[] = "bodies";

// Every family of a cache, the default one first.
const std::vector<std::string>& CacheFamilyNames();
bool IsCacheFamily(absl::string_view name);

// A descriptor for each of `names` with `base` options, plus what the
// family needs (the counters' family merges its operands).
std::vector<rocksdb::ColumnFamilyDescriptor> CacheFamilyDescriptors(
    const rocksdb::ColumnFamilyOptions& base,
    const std::vector<std::string>& names = CacheFamilyNames());

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_STORE_STORE_FAMILIES_H_
