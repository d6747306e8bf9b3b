// Savings ledger: what the cache served, spent and saved, per namespace x
// backend x model.
#ifndef PROMPTCACHE_LEDGER_H_
#define PROMPTCACHE_LEDGER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "promptcache/export.h"

namespace promptcache {

struct PROMPTCACHE_EXPORT LedgerRow {
  std::string ns;
  std::string backend;
  std::string model;

  int64_t requests = 0;  // every call that reached the cache
  int64_t exact_hits = 0;
  int64_t semantic_hits = 0;
  int64_t coalesced = 0;        // waited for an identical in-flight call
  int64_t misses = 0;           // went upstream (including bypass/refresh)
  int64_t stored = 0;           // misses whose answer was stored
  int64_t upstream_errors = 0;  // failed upstream calls (waiters not counted)
  int64_t false_hits = 0;       // semantic hits marked wrong by feedback

  int64_t input_tokens_served = 0;  // tokens not sent upstream thanks to hits
  int64_t output_tokens_served = 0;
  int64_t spent_nusd = 0;         // nano-dollars spent on misses
  int64_t saved_nusd = 0;         // nano-dollars saved by hits and coalescing
  int64_t embedding_nusd = 0;     // nano-dollars spent on paid embeddings
  int64_t unpriced_events = 0;    // misses/hits with no price for the model
  int64_t estimated_events = 0;   // costs computed from estimated usage
  int64_t upstream_us_spent = 0;  // upstream latency of misses
  int64_t upstream_us_saved = 0;  // upstream latency hits did not wait for

  void Add(const LedgerRow& delta);
  int64_t hits() const { return exact_hits + semantic_hits + coalesced; }
  // Answered calls (hits, and misses that got an answer) that had a price.
  int64_t priced_events() const {
    return hits() + misses - upstream_errors - unpriced_events;
  }
  double spent_dollars() const { return spent_nusd * 1e-9; }
  double saved_dollars() const { return saved_nusd * 1e-9; }
  // Saved minus the cost of caching itself.
  double net_saved_dollars() const {
    return (saved_nusd - embedding_nusd) * 1e-9;
  }
};

// "priced", "partly_unpriced" (some answered calls had no price) or
// "unpriced" (none had one).
PROMPTCACHE_EXPORT const char* LedgerRowPricing(const LedgerRow& row);

// The row as one JSON object: `promptcache report --json` rows and the
// proxy's /promptcache/stats "ledger_total" share it. Counters, hit_rate,
// false_hit_rate (null without semantic hits), dollars (spent_usd,
// saved_usd, embedding_usd, net_saved_usd) and nano-dollars (*_nusd),
// pricing, estimated, upstream_us_*; with `with_names`, first ns ("default"
// for the empty namespace), backend and model.
PROMPTCACHE_EXPORT std::string LedgerRowJson(const LedgerRow& row,
                                             bool with_names = true);

struct SavingsReport {
  std::vector<LedgerRow> rows;  // sorted by ns, backend, model
  LedgerRow total;              // sum of rows (ns/backend/model empty)
  std::string prices_date;      // date of the price data used
};

}  // namespace promptcache

#endif  // PROMPTCACHE_LEDGER_H_
