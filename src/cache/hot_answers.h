// A small in-memory cache of answers in front of RocksDB, bounded by bytes:
// a repeat of a popular request is answered without touching the store.
//
// Sharded so that concurrent readers rarely meet on a lock. Each shard keeps
// its answers packed in a log of fixed-size segments in one memory region
// of its own (mmap, transparent huge pages advised), not on the heap:
//   - memory is exactly the segments in use plus the key map, with no
//     allocator fragmentation (answers of mixed sizes evicted at random left
//     as much free-but-held heap as the cache itself);
//   - a hit reads the map slot and one contiguous record, through few TLB
//     entries (huge pages), which at a million answers was most of a hit;
//   - eviction takes the oldest segment whole and gives its answers that
//     were read since they were written a second chance (they are copied to
//     the head, flag cleared): FIFO with reinsertion, which approximates LRU
//     like CLOCK does, while a hit only sets a flag in the slot it reads;
//   - the entries' hit counters for the next stats flush are kept in the
//     same slot: counting a hit on a held answer touches no other map (a
//     separate map of a million counters was a cache miss of its own, the
//     most of a hit after the answer's).
// With a block cache reservation given, the bytes held are charged to it,
// so that one capacity bounds both.
#ifndef PROMPTCACHE_SRC_CACHE_HOT_ANSWERS_H_
#define PROMPTCACHE_SRC_CACHE_HOT_ANSWERS_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "cache/block_cache_reservation.h"
#include "cache/huge_page_allocator.h"
#include "cache/lean_mutex.h"
#include "promptcache/keys.h"
#include "promptcache/response.h"

namespace promptcache::internal {

// Hits of one entry not yet written to the store.
struct HitCounts {
  int64_t hits = 0;
  int64_t last_hit_us = 0;
  int64_t saved_nusd = 0;

  void Add(const HitCounts& other) {
    hits += other.hits;
    last_hit_us = std::max(last_hit_us, other.last_hit_us);
    saved_nusd += other.saved_nusd;
  }
};

class HotAnswers {
 public:
  // Receives the hit counts of an answer dropped (erased, expired, evicted
  // or not re-held) before TakeHitCounts took them, so that none is lost.
  // Called with a shard's lock held: it must not call into HotAnswers.
  using CountsSink = std::function<void(const Key128&, const HitCounts&)>;

  // `charge_to`: when non-null, the bytes held are reserved through it.
  // `counts_sink`: null drops the counts of dropped answers.
  explicit HotAnswers(
      size_t capacity_bytes,
      std::unique_ptr<BlockCacheReservation> charge_to = nullptr,
      CountsSink counts_sink = nullptr);
  ~HotAnswers();
  HotAnswers(const HotAnswers&) = delete;
  HotAnswers& operator=(const HotAnswers&) = delete;

  // Copies the answer for `key` into `out` when present and not expired.
  bool Get(const Key128& key, int64_t now_us, Answer* out);

  // A token to pass to Put: an Erase between Version() and Put() makes the
  // Put a no-op, so a value read from the store before a write can never
  // overwrite what the write made current.
  uint64_t Version(const Key128& key);
  void Put(const Key128& key, uint64_t version, int64_t expires_us,
           const Answer& answer);
  // For the warm-up after open: like Put, but never evicts, and keeps what
  // is already held. Returns false when the shard of `key` has no room
  // left without evicting.
  bool Fill(const Key128& key, uint64_t version, int64_t expires_us,
            const Answer& answer);
  // For the writer that has just made `answer` the stored one (it holds
  // the store's write lock): replaces what is held and, like Erase, turns
  // away Puts of reads that began before.
  void Replace(const Key128& key, int64_t expires_us, const Answer& answer);
  // The answer's hit counts go to the sink (the entry lives on in the
  // store) unless `drop_counts` (the entry is deleted: its counts must not
  // land on a later entry of the same key).
  void Erase(const Key128& key, bool drop_counts = false);

  // Adds a hit to the counts kept with the answer of `key`; false, and
  // nothing counted, when no answer of `key` is held.
  bool CountHit(const Key128& key, int64_t now_us, int64_t saved_nusd);
  // Appends to `out` the counts gathered since the last call, one pair per
  // key, and zeroes them. Takes each shard's lock for 64 keys at a time, so
  // that hits wait for little.
  void TakeHitCounts(std::vector<std::pair<Key128, HitCounts>>* out);

  // Bytes and items held now (for stats), and the most bytes they may be.
  // Bytes are the segments written so far and the key maps' slots.
  size_t bytes() const { return total_bytes_.load(std::memory_order_relaxed); }
  size_t items() const;
  size_t capacity() const { return shard_capacity_ * kShards; }
  // Answers are held as records in segments of segment_bytes(); a record
  // larger than a segment is not held (served from the store only).
  size_t segment_bytes() const { return segment_bytes_; }
  static size_t RecordBytes(const Answer& answer);

  // For a bulk fill from a store snapshot: the versions of all shards,
  // taken before the snapshot; Put(key, versions[ShardIndex(key)], ...)
  // then refuses what a write has changed since.
  static constexpr int kShards = 16;
  static size_t ShardIndex(const Key128& key) { return key.lo % kShards; }
  std::array<uint64_t, kShards> Versions();

 private:
  struct Item {
    uint32_t segment = 0;
    uint32_t offset = 0;      // of the record in the segment
    uint32_t size = 0;        // of the packed answer
    bool referenced = false;  // read since written or last given a chance
    int64_t expires_us = 0;
    HitCounts counts;  // since TakeHitCounts last took them
  };
  // A key with its item: one 64-byte slot, aligned to a cache line, so a
  // probe that finds the key has the item (and its counts) in the same
  // line. A set of slots rather than a map of pairs, whose 64-byte pairs
  // start 16 bytes into a line and so straddle two.
  struct alignas(64) Slot {
    Key128 key;
    mutable Item item;  // set elements are const; only the key is hashed
  };
  static_assert(sizeof(Slot) == 64);
  struct SlotHash {
    using is_transparent = void;
    size_t operator()(const Key128& key) const {
      return absl::Hash<Key128>()(key);
    }
    size_t operator()(const Slot& slot) const { return (*this)(slot.key); }
  };
  struct SlotEq {
    using is_transparent = void;
    static const Key128& KeyOf(const Key128& key) { return key; }
    static const Key128& KeyOf(const Slot& slot) { return slot.key; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return KeyOf(a) == KeyOf(b);
    }
  };
  using SlotSet =
      absl::flat_hash_set<Slot, SlotHash, SlotEq, HugePageAllocator<Slot>>;
  struct Segment {
    uint32_t used = 0;  // bytes written
  };
  // A cache line of its own: neighbours locked by other threads would
  // otherwise bounce it between cores on every hit.
  struct alignas(64) Shard {
    mutable LeanMutex mu;
    SlotSet items ABSL_GUARDED_BY(mu);
    // max_segments x segment bytes, aligned to 2 MiB for huge pages;
    // mapped on first use (pages become resident as segments are written).
    char* region ABSL_GUARDED_BY(mu) = nullptr;
    void* mapping ABSL_GUARDED_BY(mu) = nullptr;
    size_t mapping_bytes ABSL_GUARDED_BY(mu) = 0;
    std::vector<Segment> segments ABSL_GUARDED_BY(mu);  // touched so far
    std::deque<uint32_t> log ABSL_GUARDED_BY(mu);  // oldest first; back: head
    std::vector<uint32_t> spare ABSL_GUARDED_BY(mu);  // emptied segments
    size_t bytes ABSL_GUARDED_BY(mu) = 0;  // charged: segments + map slots
    uint64_t version ABSL_GUARDED_BY(mu) = 0;
    // Keys whose counts went up from zero since they were last taken; may
    // hold keys erased since (and a key twice).
    std::vector<Key128> counted ABSL_GUARDED_BY(mu);
  };
  Shard& ShardOf(const Key128& key) { return shards_[ShardIndex(key)]; }
  char* SegmentData(const Shard& shard, uint32_t segment) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Writes `answer` as the record of `key` at the head (erasing what `key`
  // held); returns false when it cannot be held.
  bool InsertLocked(Shard& shard, const Key128& key, int64_t expires_us,
                    const Answer& answer)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Drops what `key` holds; its hit counts go to `keep` when non-null,
  // else to the sink.
  void EraseLocked(Shard& shard, const Key128& key, HitCounts* keep = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  void SinkLocked(Shard& shard, const Key128& key, const HitCounts& counts)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Rebuilds `counted` from the items with counts: it only grows between
  // takes (a key re-held after an eviction is listed again), so without
  // takes (read-only, flushes turned off) it is kept near the items held.
  void RelistLocked(Shard& shard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Makes the head have `record` bytes free: a new segment while there is
  // room, else (when `may_evict`) the oldest segment is evicted into a
  // spare one.
  bool MakeRoomLocked(Shard& shard, size_t record, bool may_evict)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Appends the record to the head, which has room for it.
  void WriteRecordLocked(Shard& shard, const Key128& key, int64_t expires_us,
                         const Answer& answer, const HitCounts& counts = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Evicts the oldest segment into a new head, leaving `incoming` bytes
  // free in it.
  void EvictOldestLocked(Shard& shard, size_t incoming)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  size_t MapBytesLocked(const Shard& shard) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // An emptied segment, or the next one of the region not yet written.
  uint32_t TakeSegmentLocked(Shard& shard)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Recomputes the shard's charge; returns the change.
  int64_t RechargeLocked(Shard& shard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // Adds `delta` to the total and moves the block cache reservation.
  void Account(int64_t delta);

  const size_t shard_capacity_;
  const size_t segment_bytes_;
  // Per shard, one of them kept spare; 7/8 of the shard's capacity, the
  // rest is for the key map.
  const uint32_t max_segments_;
  const bool huge_pages_;  // the regions are advised huge pages
  std::array<Shard, kShards> shards_;
  std::atomic<size_t> total_bytes_{0};
  std::unique_ptr<BlockCacheReservation> reservation_;  // null: not charged
  const CountsSink counts_sink_;                        // may be empty
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_HOT_ANSWERS_H_
