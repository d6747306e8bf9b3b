#include "cache/block_cache_reservation.h"

#include <algorithm>

namespace promptcache::internal {

BlockCacheReservation::BlockCacheReservation(
    std::shared_ptr<rocksdb::Cache> cache, size_t budget, size_t min_capacity)
    : cache_(std::move(cache)),
      budget_(budget),
      min_capacity_(std::min(min_capacity, budget)) {}

void BlockCacheReservation::Update(const std::atomic<size_t>* bytes) {
  LeanMutexLock lock(&mu_);
  const size_t want =
      (bytes->load(std::memory_order_relaxed) + kChunkBytes - 1) / kChunkBytes;
  if (want <= chunks_ && chunks_ <= want + 1) return;
  chunks_ = want;
  const size_t reserved = std::min(chunks_ * kChunkBytes, budget_);
  cache_->SetCapacity(std::max(budget_ - reserved, min_capacity_));
}

}  // namespace promptcache::internal
