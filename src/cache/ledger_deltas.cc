// The ledger side of a call: a miss's delta, written with the batch it
// belongs to (so that entries and ledger stay summable after a crash).
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"

namespace promptcache {

LedgerRow Cache::Impl::MissDelta(const Request& request,
                                 Response* answer) const {
  return internal::MissDelta(options_.prices, options_.pool_unpriced_models,
                             request, answer);
}

absl::Status Cache::Impl::WriteBatchWithLedger(internal::StoreBatch* batch,
                                               const LedgerRow& delta) {
  ledger_.Stage(delta, batch);
  absl::Status s = internal::Prefixed("write", store_->Write(batch));
  if (s.ok()) ledger_.Commit(delta);
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
  std::unique_ptr<internal::StoreBatch> batch = store_->NewBatch();
  return WriteBatchWithLedger(batch.get(), delta);
}

}  // namespace promptcache
