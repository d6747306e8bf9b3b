// Hits counted on the hit path and not yet written to the store: each
// entry's counters, the ledger's deltas and the semantic hit log's records.
// Sharded by entry key, each shard under its own lock, so that concurrent
// hits rarely contend. The stats flush (stats_flush.cc) takes everything
// out with TakeAll and puts back what it could not write. Holds no store.
#ifndef PROMPTCACHE_SRC_CACHE_HIT_COUNTERS_H_
#define PROMPTCACHE_SRC_CACHE_HIT_COUNTERS_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cache/hot_answers.h"
#include "cache/huge_page_allocator.h"
#include "cache/lean_mutex.h"
#include "promptcache/keys.h"
#include "promptcache/ledger.h"
#include "promptcache/price_book.h"
#include "promptcache/response.h"

namespace promptcache::internal {

// A semantic hit waiting for the semantic hit log (feedback reads it).
struct PendingSemanticHit {
  Key128 entry;
  Key128 request;
  double similarity = 0;
  int64_t time_us = 0;
  std::string ledger_key;
  std::string query;  // the request's last user turn
};

// One answer served from the cache, as the ledger counts it.
struct ServedHit {
  Key128 entry;
  absl::string_view ns, backend, model;  // the request's
  CacheStatus how = CacheStatus::kExactHit;
  Usage usage;
  absl::Duration upstream_latency;
  // Semantic hits only: the request's key and its last user turn; without
  // a request key nothing goes to the semantic hit log.
  const Key128* request_key = nullptr;
  double similarity = 0;
  absl::string_view query;
  int64_t now_us = 0;
};

class HitCounters {
 public:
  // `prices` prices the hits and must outlive this. With
  // `pool_unpriced_models`, hits of unpriced models are counted in one
  // ledger row per namespace and backend (Options::pool_unpriced_models).
  HitCounters(const PriceBook* prices, bool pool_unpriced_models);
  HitCounters(const HitCounters&) = delete;
  HitCounters& operator=(const HitCounters&) = delete;

  // What a served answer saved: nano-dollars (0 when unpriced).
  struct Saving {
    int64_t nusd = 0;
    bool priced = false;
  };
  // Counts `hit` in its ledger row (and, for a semantic hit, the semantic
  // hit log). The entry's own counter is AddEntryHits'.
  Saving CountServed(const ServedHit& hit);

  // Adds to the counters of `key` waiting for the next flush.
  void AddEntryHits(const Key128& key, const HitCounts& counts);
  // Drops the counters of `key` (an entry deleted from the store), which
  // would otherwise be added to a later entry of the same key.
  void ForgetEntry(const Key128& key);
  // Adds `delta` to the pending delta of its row (ns, backend, model).
  void AddLedgerDelta(const LedgerRow& delta);
  void AddSemanticHits(std::vector<PendingSemanticHit> hits);

  // Everything pending, moved out: ledger deltas by ledger key, semantic
  // hit records and, with `entry_counters`, the entries' counters appended
  // to `*entries` (without it they stay for a later flush).
  struct Taken {
    absl::flat_hash_map<std::string, LedgerRow> ledger;
    std::vector<PendingSemanticHit> semantic;
  };
  Taken TakeAll(bool entry_counters,
                std::vector<std::pair<Key128, HitCounts>>* entries);

 private:
  // Cache-line aligned, as HotAnswers::Shard.
  struct alignas(64) Shard {
    LeanMutex mu;
    HugePageHashMap<Key128, HitCounts> entries ABSL_GUARDED_BY(mu);
    // Emptied `entries` of the last flush, kept for its capacity.
    HugePageHashMap<Key128, HitCounts> spare ABSL_GUARDED_BY(mu);
    // Ledger deltas by a hash of (ns, backend, model); the row holds names.
    absl::flat_hash_map<uint64_t, LedgerRow> ledger ABSL_GUARDED_BY(mu);
    std::vector<PendingSemanticHit> semantic ABSL_GUARDED_BY(mu);
    // PriceBook::Find by the ledger's row hash: one probe instead of
    // building a string key on every hit. Never cleared by a flush.
    absl::flat_hash_map<uint64_t, const ModelPrice*> prices ABSL_GUARDED_BY(mu);
  };
  static constexpr int kShards = 16;
  Shard& ShardOf(const Key128& key) { return shards_[key.lo % kShards]; }

  const PriceBook* const prices_;
  const bool pool_unpriced_models_;
  std::array<Shard, kShards> shards_;
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_HIT_COUNTERS_H_
