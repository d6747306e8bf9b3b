// The ledger side of a call: the row a request is counted in, a miss's
// delta, and a delta written with the batch it belongs to (so that entries
// and ledger stay summable after a crash).
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "cost/token_estimate.h"
#include "rocksdb/write_batch.h"

namespace promptcache {

absl::string_view Cache::Impl::LedgerModel(const Request& request) const {
  if (options_.pool_unpriced_models &&
      options_.prices.Find(request.backend, request.model) == nullptr) {
    return kPooledUnpricedModel;
  }
  return request.model;
}

LedgerRow Cache::Impl::MissDelta(const Request& request, Response* answer) {
  LedgerRow delta;
  delta.ns = NamespaceOf(request);
  delta.backend = request.backend;
  delta.model = std::string(LedgerModel(request));
  delta.requests = 1;
  delta.misses = 1;
  if (answer == nullptr) {
    delta.upstream_errors = 1;
    return delta;
  }
  const Usage usage = internal::EffectiveUsage(request, *answer);
  const ModelPrice* price =
      options_.prices.Find(request.backend, request.model);
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

void Cache::Impl::AddLedgerDelta(const LedgerRow& delta) {
  NamedRow(ledger_, internal::LedgerKey(delta.ns, delta.backend, delta.model),
           delta.ns, delta.backend, delta.model)
      .Add(delta);
}

absl::Status Cache::Impl::WriteBatchWithLedger(rocksdb::WriteBatch* batch,
                                               const LedgerRow& delta) {
  const std::string key =
      internal::LedgerKey(delta.ns, delta.backend, delta.model);
  LedgerRow row;
  if (auto it = ledger_.find(key); it != ledger_.end()) row = it->second;
  row.Add(delta);
  batch->Put(ledger_cf_, key, internal::EncodeLedgerRow(row));
  absl::Status s = FromRocks(WriteResuming(batch), "write");
  if (s.ok()) AddLedgerDelta(delta);
  return s;
}

absl::Status Cache::Impl::RecordUnstoredMiss(const Request& request,
                                             Response* answer, bool coalesced) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  LedgerRow delta = MissDelta(request, answer);
  if (coalesced) {
    // The leader counted the miss and the failed upstream call.
    delta.misses = 0;
    delta.upstream_errors = 0;
  }
  if (answer != nullptr) answer->stored = false;
  absl::MutexLock lock(&write_mu_);
  rocksdb::WriteBatch batch;
  return WriteBatchWithLedger(&batch, delta);
}

}  // namespace promptcache
