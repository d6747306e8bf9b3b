// A small in-memory cache of answers in front of RocksDB, bounded by bytes:
// a repeat of a popular request is answered without touching the store.
// Sharded so that concurrent readers rarely meet on a lock. Eviction is
// CLOCK (second chance), an approximation of LRU: a hit only sets a flag in
// the item it already reads, where LRU list splicing would write three more
// scattered cache lines on every hit.
//
// An answer is kept packed in one allocation (the fields a stored answer
// has, and nothing else), so that a hit reads the map slot and one block,
// and memory is what the answers weigh plus a fixed overhead per item.
// With a block cache given, the bytes held are charged to it
// (BlockCacheReservation), so that its capacity bounds both.
#ifndef PROMPTCACHE_SRC_CACHE_HOT_ANSWERS_H_
#define PROMPTCACHE_SRC_CACHE_HOT_ANSWERS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "cache/block_cache_reservation.h"
#include "cache/lean_mutex.h"
#include "promptcache/keys.h"
#include "promptcache/response.h"

namespace promptcache::internal {

class HotAnswers {
 public:
  // `charge_to`: when non-null, the bytes held are reserved through it.
  explicit HotAnswers(
      size_t capacity_bytes,
      std::unique_ptr<BlockCacheReservation> charge_to = nullptr);

  // Copies the answer for `key` into `out` when present and not expired:
  // text, tool calls, finish reason, usage and upstream latency (what the
  // store keeps of an answer); the other fields of `out` are left as they
  // are.
  bool Get(const Key128& key, int64_t now_us, Response* out);

  // A token to pass to Put: an Erase between Version() and Put() makes the
  // Put a no-op, so a value read from the store before a write can never
  // overwrite what the write made current.
  uint64_t Version(const Key128& key);
  void Put(const Key128& key, uint64_t version, int64_t expires_us,
           const Response& answer);
  // For the writer that has just made `answer` the stored one (it holds
  // the store's write lock): replaces what is held and, like Erase, turns
  // away Puts of reads that began before.
  void Replace(const Key128& key, int64_t expires_us, const Response& answer);
  void Erase(const Key128& key);

  // Bytes an answer is charged when held: its packed block, the
  // allocator's header and rounding, and its share of the map and clock.
  static size_t ChargeOf(const Response& answer);
  // Bytes and items held now (for stats), and the most they may be.
  size_t bytes() const { return total_bytes_.load(std::memory_order_relaxed); }
  size_t items() const;
  size_t capacity() const { return shard_capacity_ * kShards; }

  // For a bulk fill from a store snapshot: the versions of all shards,
  // taken before the snapshot; Put(key, versions[ShardIndex(key)], ...)
  // then refuses what a write has changed since.
  static constexpr int kShards = 16;
  static size_t ShardIndex(const Key128& key) { return key.lo % kShards; }
  std::array<uint64_t, kShards> Versions();

 private:
  struct Item {
    std::unique_ptr<char[]> packed;
    int64_t expires_us = 0;
    uint32_t bytes = 0;
    uint32_t slot = 0;        // position in Shard::clock
    bool referenced = false;  // read since the clock hand last passed
  };
  struct ClockSlot {
    Key128 key;
    bool used = false;
  };
  struct Shard {
    mutable LeanMutex mu;
    absl::flat_hash_map<Key128, Item> items ABSL_GUARDED_BY(mu);
    // The items' keys in clock order; erased items leave holes, which new
    // items fill most recently freed first (an eviction's hole is just
    // behind the hand, so a new item gets a full turn before it can go).
    std::vector<ClockSlot> clock ABSL_GUARDED_BY(mu);
    std::vector<uint32_t> holes ABSL_GUARDED_BY(mu);
    size_t hand ABSL_GUARDED_BY(mu) = 0;
    size_t bytes ABSL_GUARDED_BY(mu) = 0;
    uint64_t version ABSL_GUARDED_BY(mu) = 0;
  };
  Shard& ShardOf(const Key128& key) { return shards_[ShardIndex(key)]; }
  // Inserts (erasing what `key` held); returns the change in bytes.
  int64_t InsertLocked(Shard& shard, const Key128& key, int64_t expires_us,
                       std::unique_ptr<char[]> packed, size_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Returns the bytes freed.
  size_t EraseLocked(Shard& shard, const Key128& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Evicts one item: the first unreferenced one from the hand on.
  size_t EvictOneLocked(Shard& shard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Adds `delta` to the total and moves the block cache reservation.
  void Account(int64_t delta);

  const size_t shard_capacity_;
  std::array<Shard, kShards> shards_;
  std::atomic<size_t> total_bytes_{0};
  std::unique_ptr<BlockCacheReservation> reservation_;  // null: not charged
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_HOT_ANSWERS_H_
