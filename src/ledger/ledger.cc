#include "promptcache/ledger.h"

#include "ledger/ledger_counters.h"

namespace promptcache {

void LedgerRow::Add(const LedgerRow& d) {
  for (int64_t LedgerRow::*counter : internal::kLedgerCounters) {
    this->*counter += d.*counter;
  }
}

}  // namespace promptcache
