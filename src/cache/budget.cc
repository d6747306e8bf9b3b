// Budget: what entries are charged, what their hits save, and which to
// evict; eviction.cc is the policy.
#include "cache/budget.h"

#include <string>

#include "cache/cache_internal.h"
#include "cost/token_estimate.h"
#include "promptcache/price_book.h"

namespace promptcache::internal {

Budget::Budget(const Options& options) : options_(options) {
  if (options.max_bytes > 0 && !options.read_only) {
    tracker_ = std::make_unique<EvictionTracker>(options.eviction);
  }
}

int64_t Budget::EntryBytes(size_t entry_value_bytes, size_t vector_dim,
                           size_t vector_text_bytes) {
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

int64_t Budget::CostPerHit(const Request& request, const Answer& answer) const {
  const Usage usage = EffectiveUsage(request, answer);
  const ModelPrice* price =
      options_.prices.Find(request.backend, request.model);
  if (price != nullptr) return CostNanoDollars(*price, usage);
  return usage.input_tokens + usage.output_tokens;
}

absl::Status Budget::Load(Store* store) {
  if (!enabled()) return absl::OkStatus();
  std::string sized;
  if (Found(store->Get(Family::kMeta, kSizedStatsKey, &sized))) {
    std::unique_ptr<StoreIterator> it = store->NewIterator(Family::kEntryStats);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      EntryStats stats;
      absl::StatusOr<Key128> key = Key128::FromBytes(it->key());
      if (!key.ok() || !DecodeEntryStats(it->value(), &stats).ok() ||
          stats.bytes <= 0) {
        continue;  // Counters of an entry stored before sizes were kept.
      }
      tracker_->Upsert(*key, stats.bytes, stats.cost_nusd, stats.expires_us, 0,
                       stats.hits, stats.last_hit_us);
    }
    return Prefixed("reading entry sizes", it->status());
  }
  // A database from before sizes were kept: measure every entry once and
  // record its size with its counters.
  std::unique_ptr<StoreIterator> it = store->NewIterator(Family::kEntries);
  std::unique_ptr<StoreBatch> batch = store->NewBatch();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<Key128> key = Key128::FromBytes(it->key());
    absl::StatusOr<StoredEntry> entry = DecodeEntry(it->value());
    if (!key.ok() || !entry.ok() || entry->answers.empty()) continue;
    EntryStats stats;
    std::string old;
    if (Found(store->Get(Family::kEntryStats, it->key(), &old))) {
      DecodeEntryStats(old, &stats).IgnoreError();
    }
    size_t dim = 0, text = 0;
    std::string vector_value;
    if (Found(store->Get(Family::kVectors, it->key(), &vector_value))) {
      VectorRecord record;
      if (DecodeVector(vector_value, &record).ok()) {
        dim = record.vector.size();
        text = record.text.size();
      }
    }
    Request request;
    request.backend = entry->backend;
    request.model = entry->model;
    stats.bytes = EntryBytes(it->value().size(), dim, text);
    stats.cost_nusd = CostPerHit(request, entry->answers.front());
    stats.expires_us = entry->expires_us;
    batch->Put(Family::kEntryStats, it->key(), EncodeEntryStats(stats));
    tracker_->Upsert(*key, stats.bytes, stats.cost_nusd, stats.expires_us,
                     entry->created_us, stats.hits, stats.last_hit_us);
  }
  if (!it->status().ok()) return Prefixed("reading entries", it->status());
  batch->Put(Family::kMeta, kSizedStatsKey, "1");
  return Prefixed("recording entry sizes", store->Write(batch.get()));
}

void Budget::Track(const Key128& key, const EntryStats& stats, int64_t now_us) {
  if (!enabled()) return;
  tracker_->Upsert(key, stats.bytes, stats.cost_nusd, stats.expires_us, now_us,
                   stats.hits, stats.last_hit_us);
}

void Budget::Touch(const Key128& key, int64_t new_hits, int64_t last_hit_us) {
  if (enabled()) tracker_->Touch(key, new_hits, last_hit_us);
}

void Budget::Forget(const Key128& key) {
  if (enabled()) tracker_->Remove(key);
}

bool Budget::Tracks(const Key128& key) const {
  return !enabled() || tracker_->Contains(key);
}

std::vector<EvictionTracker::Slot> Budget::TakeVictims(int64_t now_us) {
  if (!enabled() ||
      tracker_->total_bytes() <= static_cast<int64_t>(options_.max_bytes)) {
    return {};
  }
  const int64_t target =
      static_cast<int64_t>(static_cast<double>(options_.max_bytes) *
                           options_.eviction_low_watermark);
  return tracker_->TakeVictims(target, now_us);
}

void Budget::Restore(const std::vector<EvictionTracker::Slot>& victims,
                     size_t first) {
  for (size_t k = first; k < victims.size(); ++k) tracker_->Restore(victims[k]);
}

}  // namespace promptcache::internal
