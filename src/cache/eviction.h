// Which entries to evict when the cache is over its byte budget.
//
// Entries are tracked compactly (one slot each, ~64 bytes) and victims are
// chosen by sampling, as Redis does for its LRU/LFU: each eviction looks at
// kSamples random entries and takes the lowest priority. With 32 samples the
// victim is among the lowest ~3% by priority, without a priority queue that
// would cost two tree nodes per entry and a rebalance per hit.
#ifndef PROMPTCACHE_SRC_CACHE_EVICTION_H_
#define PROMPTCACHE_SRC_CACHE_EVICTION_H_

#include <cstdint>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "promptcache/keys.h"
#include "promptcache/options.h"

namespace promptcache::internal {

class EvictionTracker {
 public:
  static constexpr int kSamples = 32;

  explicit EvictionTracker(EvictionPolicy policy);

  // A stored entry (new or replaced). `cost_nusd`: what one hit saves.
  // `expires_us` 0: never. Hits already counted for the key are kept when
  // `keep_hits`.
  void Upsert(const Key128& key, int64_t bytes, int64_t cost_nusd,
              int64_t expires_us, int64_t now_us, int64_t hits = 0,
              int64_t last_us = 0);
  // Hits counted since the last call (from the stats flush).
  void Touch(const Key128& key, int64_t new_hits, int64_t last_us);
  void Remove(const Key128& key);

  struct Slot {
    Key128 key;
    int64_t bytes = 0;
    int64_t cost_nusd = 0;
    int64_t expires_us = 0;
    int64_t hits = 0;
    int64_t last_us = 0;
    double priority = 0;
  };
  // Chooses entries to evict, most expendable first (expired entries
  // before any other), until the tracked bytes would be <= target_bytes,
  // and stops tracking them. For GDSF, raises the inflation value L to
  // each victim's priority, so that entries not hit for long age out.
  std::vector<Slot> TakeVictims(int64_t target_bytes, int64_t now_us);
  // Tracks a victim again (its deletion failed).
  void Restore(const Slot& slot);

  int64_t total_bytes() const { return total_bytes_; }
  size_t size() const { return slots_.size(); }
  bool Contains(const Key128& key) const { return index_.contains(key); }

 private:
  double Priority(const Slot& slot) const;
  void RemoveAt(size_t index);

  const EvictionPolicy policy_;
  std::vector<Slot> slots_;
  absl::flat_hash_map<Key128, uint32_t> index_;
  int64_t total_bytes_ = 0;
  double inflation_ = 0;  // GDSF's L
  std::mt19937_64 rng_{0x5eed};
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_EVICTION_H_
