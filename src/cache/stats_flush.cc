// Cache::Impl: the background flush of hit counters, the ledger and the
// semantic hit log from the hit shards to RocksDB.
#include <algorithm>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "promptcache/cache.h"

namespace promptcache {
void Cache::Impl::FlushLoop() {
  absl::MutexLock lock(&stop_mu_);
  while (!stop_) {
    if (stop_mu_.AwaitWithTimeout(absl::Condition(&stop_),
                                  options_.stats_flush_interval)) {
      break;
    }
    stop_mu_.Unlock();
    // Retried next interval and on close.
    FlushStats(/*entry_counters_always=*/false).IgnoreError();
    stop_mu_.Lock();
  }
}

absl::Status Cache::Impl::FlushStats(bool entry_counters_always) {
  if (options_.read_only) return absl::OkStatus();
  absl::MutexLock flush_lock(&flush_mu_);
  const absl::Time now = absl::Now();
  const bool entry_counters =
      entry_counters_always ||
      now - entry_stats_flushed_ >= options_.entry_stats_flush_interval;
  // Taken before the shards are emptied: an interval is from one emptying
  // to the next.
  if (entry_counters) entry_stats_flushed_ = now;
  absl::MutexLock lock(&write_mu_);
  return FlushStatsLocked(entry_counters);
}

absl::Status Cache::Impl::FlushStatsLocked(bool entry_counters) {
  // The shards' counters are merged only with the hot answers' below. The
  // vector keeps its capacity from flush to flush (as the shards' maps do,
  // HitCounters::TakeAll).
  std::vector<std::pair<Key128, internal::HitCounts>>& hits = flush_hits_;
  if (hits.capacity() > 4 * std::max<size_t>(hits.size(), 4096)) {
    hits = {};  // the last flush was far smaller than an earlier burst
  }
  hits.clear();
  internal::HitCounters::Taken taken =
      hit_counters_.TakeAll(entry_counters, &hits);
  absl::flat_hash_map<std::string, LedgerRow>& deltas = taken.ledger;
  std::vector<internal::PendingSemanticHit>& semantic = taken.semantic;
  const bool take_hot = entry_counters && hot_ != nullptr;
  if (hits.empty() && deltas.empty() && semantic.empty() && !take_hot) {
    return absl::OkStatus();
  }
  // In key order (KeyBytes is big-endian hi, lo): a memtable insert then
  // starts from the previous one's position. In hash order each insert
  // searched the skip list from the top, a few us of cache misses; at 370k
  // hits/s on distinct keys that was 40% of the CPU next to the hits.
  // Sorted without the write lock (tens of ms for a million keys), as the
  // chunks below give it up: hits of entries evicted meanwhile are skipped
  // there, and purges wait for flush_mu_.
  write_mu_.Unlock();
  if (take_hot) hot_->TakeHitCounts(&hits);
  std::sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) {
    return a.first.hi != b.first.hi ? a.first.hi < b.first.hi
                                    : a.first.lo < b.first.lo;
  });
  // A key can be counted both with its hot answer and in a shard (hits
  // served from the store before it was held, counts of a dropped answer):
  // one merge operand for both.
  size_t distinct = 0;
  for (size_t i = 0; i < hits.size(); ++i) {
    if (distinct > 0 && hits[distinct - 1].first == hits[i].first) {
      hits[distinct - 1].second.Add(hits[i].second);
    } else {
      hits[distinct++] = hits[i];
    }
  }
  hits.resize(distinct);
  write_mu_.Lock();
  if (hits.empty() && deltas.empty() && semantic.empty()) {
    return absl::OkStatus();
  }

  // Counters are written in chunks, with the write lock released between
  // them: a backlog of a million hit entries must not hold up stores and
  // misses for the seconds it takes to write.
  size_t next = 0;
  for (bool first = true; first || next < hits.size(); first = false) {
    std::unique_ptr<StoreBatch> batch = store_->NewBatch();
    absl::flat_hash_map<std::string, internal::SemanticHitRecord> logs;
    if (first) {
      // Semantic hit log: entry + request -> similarity, count, time, names.
      for (const internal::PendingSemanticHit& hit : semantic) {
        const std::string key = hit.entry.ToBytes() + hit.request.ToBytes();
        auto [it, inserted] = logs.try_emplace(key);
        internal::SemanticHitRecord& record = it->second;
        if (inserted) {
          std::string old;
          if (Found(store_->Get(Family::kSemanticHits, key, &old))) {
            internal::DecodeSemanticHit(old, &record).IgnoreError();
          }
        }
        record.count += 1;
        record.similarity = hit.similarity;
        record.last_us = std::max(record.last_us, hit.time_us);
        record.ledger_key = hit.ledger_key;
        record.query = hit.query;
      }
      for (const auto& [key, record] : logs) {
        batch->Put(Family::kSemanticHits, key,
                   internal::EncodeSemanticHit(record));
      }
      for (auto& [key, delta] : deltas) ledger_.Stage(delta, batch.get());
    }
    const size_t end = std::min(hits.size(), next + kStatsChunk);
    for (size_t i = next; i < end; ++i) {
      const auto& [key, hit] = hits[i];
      // Hits of an entry evicted meanwhile: nothing to count them on.
      if (!budget_.Tracks(key)) continue;
      // Added by the family's merge operator: no read.
      batch->Merge(Family::kEntryStats, AsView(KeyBytes(key)),
                   internal::EncodeEntryStatsDelta(
                       {hit.hits, hit.last_hit_us, hit.saved_nusd}));
    }
    absl::Status s =
        Prefixed("writing hit statistics", store_->Write(batch.get()));
    if (!s.ok()) {
      // Put the unwritten counts back so that a later flush retries them.
      for (size_t i = next; i < hits.size(); ++i) {
        hit_counters_.AddEntryHits(hits[i].first, hits[i].second);
      }
      if (first) {
        for (auto& [key, delta] : deltas) hit_counters_.AddLedgerDelta(delta);
        // Semantic hit records too, or their feedback could never be given.
        hit_counters_.AddSemanticHits(std::move(semantic));
      }
      return s;
    }
    if (first) {
      for (auto& [key, delta] : deltas) ledger_.Commit(delta);
    }
    for (size_t i = next; i < end; ++i) {
      budget_.Touch(hits[i].first, hits[i].second.hits,
                    hits[i].second.last_hit_us);
    }
    next = end;
    if (next < hits.size()) {
      // Let waiting writers in between chunks (absl::Mutex is not fair: an
      // immediate re-lock would win again).
      write_mu_.Unlock();
      absl::SleepFor(absl::Microseconds(200));
      write_mu_.Lock();
    }
  }
  return absl::OkStatus();
}

}  // namespace promptcache
