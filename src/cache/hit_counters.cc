#include "cache/hit_counters.h"

#include <algorithm>

#include "cache/cache_internal.h"
#include "promptcache/options.h"
#include "store/entry_codec.h"

namespace promptcache::internal {

HitCounters::HitCounters(const PriceBook* prices, bool pool_unpriced_models)
    : prices_(prices), pool_unpriced_models_(pool_unpriced_models) {}

HitCounters::Saving HitCounters::CountServed(const ServedHit& hit) {
  const uint64_t price_hash = RowHash(hit.ns, hit.backend, hit.model);
  Shard& shard = ShardOf(hit.entry);
  LeanMutexLock lock(&shard.mu);
  // Bounded: names come from callers.
  if (shard.prices.size() > 1024) shard.prices.clear();
  auto [known, added] = shard.prices.try_emplace(price_hash, nullptr);
  if (added) known->second = prices_->Find(hit.backend, hit.model);
  const ModelPrice* price = known->second;
  Saving saving;
  saving.priced = price != nullptr;
  saving.nusd = price ? CostNanoDollars(*price, hit.usage) : 0;

  const bool pooled = price == nullptr && pool_unpriced_models_;
  const absl::string_view model =
      pooled ? absl::string_view(kPooledUnpricedModel) : hit.model;
  LedgerRow& row = NamedRow(
      shard.ledger, pooled ? RowHash(hit.ns, hit.backend, model) : price_hash,
      hit.ns, hit.backend, model);
  row.requests += 1;
  if (hit.how == CacheStatus::kSemanticHit && hit.request_key != nullptr) {
    shard.semantic.push_back(
        {hit.entry, *hit.request_key, hit.similarity, hit.now_us,
         LedgerKey(row.ns, row.backend, row.model), std::string(hit.query)});
  }
  if (hit.how == CacheStatus::kExactHit) row.exact_hits += 1;
  if (hit.how == CacheStatus::kSemanticHit) row.semantic_hits += 1;
  if (hit.how == CacheStatus::kCoalesced) row.coalesced += 1;
  row.input_tokens_served += hit.usage.input_tokens;
  row.output_tokens_served += hit.usage.output_tokens;
  row.saved_nusd += saving.nusd;
  if (price == nullptr) row.unpriced_events += 1;
  if (hit.usage.estimated) row.estimated_events += 1;
  row.upstream_us_saved += absl::ToInt64Microseconds(hit.upstream_latency);
  return saving;
}

void HitCounters::AddEntryHits(const Key128& key, const HitCounts& counts) {
  Shard& shard = ShardOf(key);
  LeanMutexLock lock(&shard.mu);
  shard.entries[key].Add(counts);
}

void HitCounters::ForgetEntry(const Key128& key) {
  Shard& shard = ShardOf(key);
  LeanMutexLock lock(&shard.mu);
  shard.entries.erase(key);
}

void HitCounters::AddLedgerDelta(const LedgerRow& delta) {
  Shard& shard = shards_[0];
  LeanMutexLock lock(&shard.mu);
  NamedRow(shard.ledger, RowHash(delta.ns, delta.backend, delta.model),
           delta.ns, delta.backend, delta.model)
      .Add(delta);
}

void HitCounters::AddSemanticHits(std::vector<PendingSemanticHit> hits) {
  Shard& shard = shards_[0];
  LeanMutexLock lock(&shard.mu);
  for (PendingSemanticHit& hit : hits) shard.semantic.push_back(std::move(hit));
}

HitCounters::Taken HitCounters::TakeAll(
    bool entry_counters, std::vector<std::pair<Key128, HitCounts>>* entries) {
  Taken taken;
  // A key is always counted in the same shard, so the shards' counters are
  // concatenated. The shards' spare maps keep their capacity from flush to
  // flush: at a million hits a second they are tens of MB, which, allocated
  // and freed every second, fragment the heap.
  for (Shard& shard : shards_) {
    HugePageHashMap<Key128, HitCounts> shard_entries;
    absl::flat_hash_map<uint64_t, LedgerRow> shard_ledger;
    std::vector<PendingSemanticHit> shard_semantic;
    {
      // Taken out whole and copied without the lock: hits on this shard
      // wait for a few swaps, not for the copy.
      LeanMutexLock lock(&shard.mu);
      if (entry_counters) {
        shard_entries.swap(shard.entries);
        shard.entries.swap(shard.spare);
      }
      shard_ledger.swap(shard.ledger);
      shard_semantic.swap(shard.semantic);
    }
    for (PendingSemanticHit& hit : shard_semantic) {
      taken.semantic.push_back(std::move(hit));
    }
    if (entry_counters) {
      entries->insert(entries->end(), shard_entries.begin(),
                      shard_entries.end());
      if (shard_entries.capacity() >
          4 * std::max<size_t>(shard_entries.size(), 4096)) {
        shard_entries = {};  // a burst is over: give its memory back
      } else {
        // erase() keeps the slot array where clear() would free a large one.
        shard_entries.erase(shard_entries.begin(), shard_entries.end());
      }
      LeanMutexLock lock(&shard.mu);
      shard.spare.swap(shard_entries);
    }
    for (auto& [hash, row] : shard_ledger) {
      NamedRow(taken.ledger, LedgerKey(row.ns, row.backend, row.model), row.ns,
               row.backend, row.model)
          .Add(row);
    }
  }
  return taken;
}

}  // namespace promptcache::internal
