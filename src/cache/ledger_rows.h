// The ledger's persisted rows (the ledger family), mirrored in memory, and
// how a request is priced into them. A delta is written in the same batch
// as the entry it belongs to (Stage), and added to the mirror once that
// batch is written (Commit), so that entries and ledger stay summable after
// a crash. Hits wait in HitCounters until the stats flush stages them.
#ifndef PROMPTCACHE_SRC_CACHE_LEDGER_ROWS_H_
#define PROMPTCACHE_SRC_CACHE_LEDGER_ROWS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "promptcache/ledger.h"
#include "promptcache/price_book.h"
#include "promptcache/request.h"
#include "promptcache/response.h"
#include "store/store.h"

namespace promptcache::internal {

// The ledger's name for the request's model: the model, or
// kPooledUnpricedModel for an unpriced one with `pool_unpriced_models`.
absl::string_view LedgerModel(const PriceBook& prices,
                              bool pool_unpriced_models,
                              const Request& request);

// The ledger delta of one miss: a stored or unstored answer, or a failed
// upstream call (`answer` null). Prices the answer and sets its dollar
// fields (spent, none saved).
LedgerRow MissDelta(const PriceBook& prices, bool pool_unpriced_models,
                    const Request& request, Response* answer);

// Not thread-safe: the cache calls it under its write lock.
class LedgerRows {
 public:
  LedgerRows() = default;
  LedgerRows(const LedgerRows&) = delete;
  LedgerRows& operator=(const LedgerRows&) = delete;

  // Reads every row of the store's ledger family (at open). A row that does not
  // decode is left on disk, counted in `*unreadable` and kept out of the
  // mirror. With `migrate_keys`, rows under schema-1 keys are rewritten under
  // today's keys into `migration`.
  absl::Status Load(Store* store, bool migrate_keys, StoreBatch* migration,
                    int64_t* unreadable);

  // Puts the row of `delta`'s (ns, backend, model), with `delta` added,
  // into `batch`. Commit(delta) once the batch is written.
  void Stage(const LedgerRow& delta, StoreBatch* batch) const;
  void Commit(const LedgerRow& delta);

  // Every row, in no particular order.
  std::vector<LedgerRow> Rows() const;

 private:
  absl::flat_hash_map<std::string, LedgerRow> rows_;  // by ledger key
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_LEDGER_ROWS_H_
