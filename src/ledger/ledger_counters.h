// The counters of a LedgerRow, in their stored order: one list for summing,
// encoding and decoding.
#ifndef PROMPTCACHE_SRC_LEDGER_LEDGER_COUNTERS_H_
#define PROMPTCACHE_SRC_LEDGER_LEDGER_COUNTERS_H_

#include <array>
#include <cstdint>

#include "promptcache/ledger.h"

namespace promptcache::internal {

// Append only: the position is the stored order (src/store/entry_codec.cc).
inline constexpr std::array<int64_t LedgerRow::*, 17> kLedgerCounters = {
    &LedgerRow::requests,
    &LedgerRow::exact_hits,
    &LedgerRow::semantic_hits,
    &LedgerRow::coalesced,
    &LedgerRow::misses,
    &LedgerRow::stored,
    &LedgerRow::upstream_errors,
    &LedgerRow::false_hits,
    &LedgerRow::input_tokens_served,
    &LedgerRow::output_tokens_served,
    &LedgerRow::spent_nusd,
    &LedgerRow::saved_nusd,
    &LedgerRow::embedding_nusd,
    &LedgerRow::unpriced_events,
    &LedgerRow::estimated_events,
    &LedgerRow::upstream_us_spent,
    &LedgerRow::upstream_us_saved};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_LEDGER_LEDGER_COUNTERS_H_
