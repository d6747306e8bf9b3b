#include "cache/ledger_rows.h"

#include <memory>

#include "cache/cache_internal.h"
#include "cost/token_estimate.h"
#include "promptcache/options.h"
#include "store/entry_codec.h"

namespace promptcache::internal {

absl::string_view LedgerModel(const PriceBook& prices,
                              bool pool_unpriced_models,
                              const Request& request) {
  if (pool_unpriced_models &&
      prices.Find(request.backend, request.model) == nullptr) {
    return kPooledUnpricedModel;
  }
  return request.model;
}

LedgerRow MissDelta(const PriceBook& prices, bool pool_unpriced_models,
                    const Request& request, Response* answer) {
  LedgerRow delta;
  delta.ns = NamespaceOf(request);
  delta.backend = request.backend;
  delta.model = std::string(LedgerModel(prices, pool_unpriced_models, request));
  delta.requests = 1;
  delta.misses = 1;
  if (answer == nullptr) {
    delta.upstream_errors = 1;
    return delta;
  }
  const Usage usage = EffectiveUsage(request, *answer);
  const ModelPrice* price = prices.Find(request.backend, request.model);
  const int64_t spent = price ? CostNanoDollars(*price, usage) : 0;
  delta.spent_nusd = spent;
  delta.unpriced_events = price ? 0 : 1;
  delta.estimated_events = usage.estimated ? 1 : 0;
  delta.upstream_us_spent = absl::ToInt64Microseconds(answer->upstream_latency);
  answer->priced = price != nullptr;
  answer->dollars_spent = spent * 1e-9;
  answer->dollars_saved = 0;
  return delta;
}

absl::Status LedgerRows::Load(Store* store, bool migrate_keys,
                              StoreBatch* migration, int64_t* unreadable) {
  rows_.clear();
  std::unique_ptr<StoreIterator> it = store->NewIterator(Family::kLedger);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    LedgerRow row;
    // One unreadable row (an older build let a NUL into a model name) must
    // not stop the cache (CacheStats::unreadable_ledger_rows).
    if (!SplitLedgerKey(it->key(), &row).ok() ||
        !DecodeLedgerRow(it->value(), &row).ok()) {
      ++*unreadable;
      continue;
    }
    const std::string key = LedgerKey(row.ns, row.backend, row.model);
    LedgerRow& kept = NamedRow(rows_, key, row.ns, row.backend, row.model);
    kept.Add(row);
    if (migrate_keys && IsLegacyLedgerKey(it->key())) {
      migration->Delete(Family::kLedger, it->key());
      migration->Put(Family::kLedger, key, EncodeLedgerRow(kept));
    }
  }
  return Prefixed("reading ledger", it->status());
}

void LedgerRows::Stage(const LedgerRow& delta, StoreBatch* batch) const {
  const std::string key = LedgerKey(delta.ns, delta.backend, delta.model);
  LedgerRow row;
  if (auto it = rows_.find(key); it != rows_.end()) row = it->second;
  row.Add(delta);
  batch->Put(Family::kLedger, key, EncodeLedgerRow(row));
}

void LedgerRows::Commit(const LedgerRow& delta) {
  NamedRow(rows_, LedgerKey(delta.ns, delta.backend, delta.model), delta.ns,
           delta.backend, delta.model)
      .Add(delta);
}

std::vector<LedgerRow> LedgerRows::Rows() const {
  std::vector<LedgerRow> out;
  out.reserve(rows_.size());
  for (const auto& [key, row] : rows_) out.push_back(row);
  return out;
}

}  // namespace promptcache::internal
