#include "promptcache/ledger.h"

#include "ledger/ledger_counters.h"
#include "nlohmann/json.hpp"

namespace promptcache {

void LedgerRow::Add(const LedgerRow& d) {
  for (int64_t LedgerRow::*counter : internal::kLedgerCounters) {
    this->*counter += d.*counter;
  }
}

const char* LedgerRowPricing(const LedgerRow& row) {
  if (row.unpriced_events <= 0) return "priced";
  // Events that carry a cost: answered misses and hits (upstream errors
  // count as misses but have no cost to price).
  const int64_t events = row.misses - row.upstream_errors + row.hits();
  return row.unpriced_events >= events ? "unpriced" : "partly_unpriced";
}

std::string LedgerRowJson(const LedgerRow& row, bool with_names) {
  nlohmann::ordered_json j;
  if (with_names) {
    j["ns"] = row.ns.empty() ? "default" : row.ns;
    j["backend"] = row.backend;
    j["model"] = row.model;
  }
  j["requests"] = row.requests;
  j["exact_hits"] = row.exact_hits;
  j["semantic_hits"] = row.semantic_hits;
  j["coalesced"] = row.coalesced;
  j["hits"] = row.hits();
  j["misses"] = row.misses;
  j["stored"] = row.stored;
  j["upstream_errors"] = row.upstream_errors;
  j["false_hits"] = row.false_hits;
  j["hit_rate"] = row.requests > 0 ? static_cast<double>(row.hits()) /
                                         static_cast<double>(row.requests)
                                   : 0.0;
  // Semantic hits marked wrong by feedback, per semantic hit served.
  if (row.semantic_hits > 0) {
    j["false_hit_rate"] = static_cast<double>(row.false_hits) /
                          static_cast<double>(row.semantic_hits);
  } else {
    j["false_hit_rate"] = nullptr;
  }
  j["input_tokens_served"] = row.input_tokens_served;
  j["output_tokens_served"] = row.output_tokens_served;
  j["spent_usd"] = row.spent_dollars();
  j["saved_usd"] = row.saved_dollars();
  j["embedding_usd"] = row.embedding_nusd * 1e-9;
  j["net_saved_usd"] = row.net_saved_dollars();
  j["spent_nusd"] = row.spent_nusd;
  j["saved_nusd"] = row.saved_nusd;
  j["embedding_nusd"] = row.embedding_nusd;
  j["net_saved_nusd"] = row.saved_nusd - row.embedding_nusd;
  j["pricing"] = LedgerRowPricing(row);
  j["unpriced_events"] = row.unpriced_events;
  j["estimated"] = row.estimated_events > 0;
  j["estimated_events"] = row.estimated_events;
  j["upstream_us_spent"] = row.upstream_us_spent;
  j["upstream_us_saved"] = row.upstream_us_saved;
  return j.dump();
}

}  // namespace promptcache
