// Cache::Impl: the byte budget's bookkeeping (what an entry costs, what a
// hit saves) and eviction down to it; eviction.cc is the policy.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "cost/token_estimate.h"
#include "promptcache/cache.h"
#include "request/namespace.h"
#include "store/entry_stats_merge.h"

namespace promptcache {
int64_t Cache::Impl::BudgetedBytes(size_t entry_value_bytes, size_t vector_dim,
                                   size_t vector_text_bytes) const {
  // Key (16 B) + entry, hit-counter record (~40 B with its key).
  int64_t bytes = 16 + static_cast<int64_t>(entry_value_bytes) + 40;
  if (vector_dim > 0) {
    const int64_t floats = static_cast<int64_t>(vector_dim * sizeof(float));
    // The vector record (floats, text, scope/context) and the index copy.
    bytes += 16 + floats + static_cast<int64_t>(vector_text_bytes) + 48;
    bytes += floats + kIndexOverheadPerVector;
  }
  return bytes;
}

int64_t Cache::Impl::CostPerHit(const Request& request,
                                const Answer& answer) const {
  const Usage usage = internal::EffectiveUsage(request, answer);
  const ModelPrice* price =
      options_.prices.Find(request.backend, request.model);
  if (price != nullptr) return CostNanoDollars(*price, usage);
  return usage.input_tokens + usage.output_tokens;
}

absl::Status Cache::Impl::LoadEvictionTracker() {
  absl::MutexLock lock(&write_mu_);
  eviction_ = std::make_unique<internal::EvictionTracker>(options_.eviction);
  std::string sized;
  const bool all_sized =
      Found(store_->Get(Family::kMeta, kSizedStatsKey, &sized));
  if (all_sized) {
    std::unique_ptr<StoreIterator> it =
        store_->NewIterator(Family::kEntryStats);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      internal::EntryStats stats;
      absl::StatusOr<Key128> key = Key128::FromBytes(it->key());
      if (!key.ok() || !internal::DecodeEntryStats(it->value(), &stats).ok() ||
          stats.bytes <= 0) {
        continue;  // Counters of an entry stored before sizes were kept.
      }
      eviction_->Upsert(*key, stats.bytes, stats.cost_nusd, stats.expires_us, 0,
                        stats.hits, stats.last_hit_us);
    }
    if (!it->status().ok()) {
      return Prefixed("reading entry sizes", it->status());
    }
    return EvictToBudgetLocked();
  }
  // A database from before sizes were kept: measure every entry once and
  // record its size with its counters.
  std::unique_ptr<StoreIterator> it = store_->NewIterator(Family::kEntries);
  std::unique_ptr<StoreBatch> batch = store_->NewBatch();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<Key128> key = Key128::FromBytes(it->key());
    absl::StatusOr<internal::StoredEntry> entry =
        internal::DecodeEntry(it->value());
    if (!key.ok() || !entry.ok() || entry->answers.empty()) continue;
    internal::EntryStats stats;
    std::string old;
    if (Found(store_->Get(Family::kEntryStats, it->key(), &old))) {
      internal::DecodeEntryStats(old, &stats).IgnoreError();
    }
    size_t dim = 0, text = 0;
    std::string vector_value;
    if (Found(store_->Get(Family::kVectors, it->key(), &vector_value))) {
      internal::VectorRecord record;
      if (internal::DecodeVector(vector_value, &record).ok()) {
        dim = record.vector.size();
        text = record.text.size();
      }
    }
    Request request;
    request.backend = entry->backend;
    request.model = entry->model;
    stats.bytes = BudgetedBytes(it->value().size(), dim, text);
    stats.cost_nusd = CostPerHit(request, entry->answers.front());
    stats.expires_us = entry->expires_us;
    batch->Put(Family::kEntryStats, it->key(),
               internal::EncodeEntryStats(stats));
    eviction_->Upsert(*key, stats.bytes, stats.cost_nusd, stats.expires_us,
                      entry->created_us, stats.hits, stats.last_hit_us);
  }
  if (!it->status().ok()) return Prefixed("reading entries", it->status());
  batch->Put(Family::kMeta, kSizedStatsKey, "1");
  if (absl::Status w =
          Prefixed("recording entry sizes", store_->Write(batch.get()));
      !w.ok()) {
    return w;
  }
  return EvictToBudgetLocked();
}

absl::Status Cache::Impl::EvictToBudgetLocked() {
  if (eviction_ == nullptr ||
      eviction_->total_bytes() <= static_cast<int64_t>(options_.max_bytes)) {
    return absl::OkStatus();
  }
  const int64_t target =
      static_cast<int64_t>(static_cast<double>(options_.max_bytes) *
                           options_.eviction_low_watermark);
  const std::vector<internal::EvictionTracker::Slot> victims =
      eviction_->TakeVictims(target, NowMicros());
  // Victims not deleted (a failed write) are tracked again, so that they
  // stay counted and are tried at the next store.
  auto restore_from = [&](size_t first) {
    for (size_t k = first; k < victims.size(); ++k) {
      eviction_->Restore(victims[k]);
    }
  };
  for (size_t i = 0; i < victims.size(); i += kPurgeBatch) {
    std::unique_ptr<StoreBatch> batch = store_->NewBatch();
    internal::SharedBodies::Changes bodies;
    std::vector<Key128> removed;
    const size_t end = std::min(victims.size(), i + kPurgeBatch);
    for (size_t j = i; j < end; ++j) {
      const std::array<char, 16> bytes = KeyBytes(victims[j].key);
      std::string value;
      if (Found(store_->Get(Family::kEntries, AsView(bytes), &value))) {
        bodies.UnrefEntry(value);
      }
      batch->Delete(Family::kEntries, AsView(bytes));
      batch->Delete(Family::kEntryStats, AsView(bytes));
      DeleteVector(batch.get(), victims[j].key, &removed);
    }
    if (absl::Status b = bodies_->Apply(bodies, batch.get()); !b.ok()) {
      restore_from(i);
      return b;
    }
    if (absl::Status w =
            Prefixed("evicting entries", store_->Write(batch.get()));
        !w.ok()) {
      restore_from(i);
      return w;
    }
    if (index_ != nullptr) {
      for (const Key128& key : removed) index_->Remove(key);
    }
    for (size_t j = i; j < end; ++j) {
      ForgetHitCounts(victims[j].key);
      ForgetRoundRobin(victims[j].key);
    }
    evicted_ += static_cast<int64_t>(end - i);
  }
  return absl::OkStatus();
}

}  // namespace promptcache
