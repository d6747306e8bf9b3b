// The merge operator of the entry_stats family: hit counts are added as
// deltas (EntryStatsDelta) instead of read, changed and rewritten. The
// stats flush writes one record per entry hit since the last flush; with
// a read for each, flushing 400k distinct hits a second took a CPU core.
#ifndef PROMPTCACHE_SRC_STORE_ENTRY_STATS_MERGE_H_
#define PROMPTCACHE_SRC_STORE_ENTRY_STATS_MERGE_H_

#include <memory>

#include "rocksdb/merge_operator.h"

namespace promptcache::internal {

// Full merge: the record (or, when there is none, an empty one) plus every
// delta, as a version 2 record. Partial merge: two deltas into one. A
// malformed record or delta counts as empty: counters are advisory (they
// rank eviction and are reported), and a read must not fail over them.
std::shared_ptr<rocksdb::MergeOperator> NewEntryStatsMergeOperator();

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_STORE_ENTRY_STATS_MERGE_H_
