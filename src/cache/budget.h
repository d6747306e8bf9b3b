// Budget: the byte budget's bookkeeping (Options::max_bytes). What each
// entry is charged, what one hit of it saves, which entries to evict when
// the cache is over budget (EvictionTracker is the policy), and how many
// were evicted. The cache deletes the victims (entry, counters, vector,
// bodies, hot answer and index slot) and tells the budget what it did.
//
// Not thread-safe: the cache calls it under its write lock.
#ifndef PROMPTCACHE_SRC_CACHE_BUDGET_H_
#define PROMPTCACHE_SRC_CACHE_BUDGET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "cache/eviction.h"
#include "promptcache/keys.h"
#include "promptcache/options.h"
#include "promptcache/request.h"
#include "promptcache/response.h"
#include "store/entry_codec.h"
#include "store/store.h"

namespace promptcache::internal {

class Budget {
 public:
  // Keeps `options` (the cache's; it outlives the budget). Tracks entries
  // only when options.max_bytes > 0 and the cache is writable.
  explicit Budget(const Options& options);
  Budget(const Budget&) = delete;
  Budget& operator=(const Budget&) = delete;

  // Whether entries are tracked (there is a budget to keep).
  bool enabled() const { return tracker_ != nullptr; }

  // Bytes an entry is charged: its record, hit counters, vector record and
  // its share of the vector index. Shared bodies are added by the caller.
  static int64_t EntryBytes(size_t entry_value_bytes, size_t vector_dim,
                            size_t vector_text_bytes);
  // What one hit of `answer` saves, in nano-dollars; for unpriced models a
  // token count (1 nano-dollar per token), so that they rank below priced
  // ones.
  int64_t CostPerHit(const Request& request, const Answer& answer) const;

  // Tracks every entry of `store` (at open). Sizes come from the entries'
  // counters; a store from before sizes were kept has each entry measured
  // once and its size written with its counters.
  absl::Status Load(Store* store);

  // A stored entry (new or replaced), charged `stats.bytes`.
  void Track(const Key128& key, const EntryStats& stats, int64_t now_us);
  // Hits counted since the last call (from the stats flush).
  void Touch(const Key128& key, int64_t new_hits, int64_t last_hit_us);
  // An entry deleted for another reason (purge).
  void Forget(const Key128& key);
  // Whether `key` is tracked (always true without a budget): hits of an
  // entry evicted meanwhile have nothing to count on.
  bool Tracks(const Key128& key) const;

  // The entries to evict now, most expendable first, and no longer tracked:
  // none while within max_bytes, else down to the low watermark.
  std::vector<EvictionTracker::Slot> TakeVictims(int64_t now_us);
  // Victims [first, end) whose deletion failed: tracked again, so that they
  // stay counted and are tried at the next store.
  void Restore(const std::vector<EvictionTracker::Slot>& victims, size_t first);
  void CountEvicted(int64_t entries) { evicted_ += entries; }

  int64_t evicted() const { return evicted_; }
  // Bytes charged to the tracked entries (0 without a budget).
  int64_t tracked_bytes() const {
    return tracker_ ? tracker_->total_bytes() : 0;
  }

 private:
  const Options& options_;
  std::unique_ptr<EvictionTracker> tracker_;  // null without a budget
  int64_t evicted_ = 0;
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_BUDGET_H_
