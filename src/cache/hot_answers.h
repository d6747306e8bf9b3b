// A small in-memory cache of answers in front of RocksDB, bounded by bytes:
// a repeat of a popular request is answered without touching the store.
// Sharded so that concurrent readers rarely meet on a lock. Eviction is
// CLOCK (second chance), an approximation of LRU: a hit only sets a flag in
// the item it already reads, where LRU list splicing would write three more
// scattered cache lines on every hit.
#ifndef PROMPTCACHE_SRC_CACHE_HOT_ANSWERS_H_
#define PROMPTCACHE_SRC_CACHE_HOT_ANSWERS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "cache/lean_mutex.h"
#include "promptcache/keys.h"
#include "promptcache/response.h"

namespace promptcache::internal {

class HotAnswers {
 public:
  explicit HotAnswers(size_t capacity_bytes);

  // Copies the answer for `key` into `out` when present and not expired.
  bool Get(const Key128& key, int64_t now_us, Response* out);

  // A token to pass to Put: an Erase between Version() and Put() makes the
  // Put a no-op, so a value read from the store before a write can never
  // overwrite what the write made current.
  uint64_t Version(const Key128& key);
  void Put(const Key128& key, uint64_t version, int64_t expires_us,
           const Response& answer);
  void Erase(const Key128& key);

 private:
  struct Item {
    std::shared_ptr<const Response> answer;
    int64_t expires_us = 0;
    size_t bytes = 0;
    size_t slot = 0;          // position in Shard::clock
    bool referenced = false;  // read since the clock hand last passed
  };
  struct ClockSlot {
    Key128 key;
    bool used = false;
  };
  struct Shard {
    LeanMutex mu;
    absl::flat_hash_map<Key128, Item> items ABSL_GUARDED_BY(mu);
    // The items' keys in clock order; erased items leave holes, which new
    // items fill most recently freed first (an eviction's hole is just
    // behind the hand, so a new item gets a full turn before it can go).
    std::vector<ClockSlot> clock ABSL_GUARDED_BY(mu);
    std::vector<size_t> holes ABSL_GUARDED_BY(mu);
    size_t hand ABSL_GUARDED_BY(mu) = 0;
    size_t bytes ABSL_GUARDED_BY(mu) = 0;
    uint64_t version ABSL_GUARDED_BY(mu) = 0;
  };
  static constexpr int kShards = 16;
  Shard& ShardOf(const Key128& key) { return shards_[key.lo % kShards]; }
  void EraseLocked(Shard& shard, const Key128& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Evicts one item: the first unreferenced one from the hand on.
  void EvictOneLocked(Shard& shard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  const size_t shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_HOT_ANSWERS_H_
