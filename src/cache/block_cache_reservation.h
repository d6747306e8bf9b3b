// Charges memory that promptcache holds outside RocksDB (the hot answers) to
// RocksDB's block cache, so that one configured capacity bounds both.
//
// The block cache's capacity is lowered by what is held outside it, in whole
// chunks. (Pinned placeholder entries, the way RocksDB's WriteBufferManager
// charges memtables, would not do: the cache is sharded, each shard has an
// equal part of the capacity, and placeholders hashed unevenly over the
// shards overfill some of them while the others stay full of blocks.)
#ifndef PROMPTCACHE_SRC_CACHE_BLOCK_CACHE_RESERVATION_H_
#define PROMPTCACHE_SRC_CACHE_BLOCK_CACHE_RESERVATION_H_

#include <atomic>
#include <cstddef>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "cache/lean_mutex.h"
#include "rocksdb/cache.h"

namespace promptcache::internal {

class BlockCacheReservation {
 public:
  static constexpr size_t kChunkBytes = size_t{1} << 20;

  // `budget`: the capacity the block cache has while nothing is reserved.
  // `min_capacity`: what the cache keeps whatever is reserved.
  BlockCacheReservation(std::shared_ptr<rocksdb::Cache> cache, size_t budget,
                        size_t min_capacity);
  BlockCacheReservation(const BlockCacheReservation&) = delete;
  BlockCacheReservation& operator=(const BlockCacheReservation&) = delete;

  // Makes the reservation cover `*bytes` (read under the reservation's
  // lock, so that concurrent updates cannot leave an older total in
  // place), in whole chunks rounded up. Shrinks only when a whole chunk is
  // spare beyond that, so that a size wobbling around a chunk boundary
  // does not resize the cache on every call (each resize locks every shard
  // and may evict).
  void Update(const std::atomic<size_t>* bytes);

 private:
  const std::shared_ptr<rocksdb::Cache> cache_;
  const size_t budget_;
  const size_t min_capacity_;
  LeanMutex mu_;
  size_t chunks_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_BLOCK_CACHE_RESERVATION_H_
