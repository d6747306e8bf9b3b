#include "promptcache/ledger.h"

namespace promptcache {

void LedgerRow::Add(const LedgerRow& d) {
  requests += d.requests;
  exact_hits += d.exact_hits;
  semantic_hits += d.semantic_hits;
  coalesced += d.coalesced;
  misses += d.misses;
  stored += d.stored;
  upstream_errors += d.upstream_errors;
  false_hits += d.false_hits;
  input_tokens_served += d.input_tokens_served;
  output_tokens_served += d.output_tokens_served;
  spent_nusd += d.spent_nusd;
  saved_nusd += d.saved_nusd;
  embedding_nusd += d.embedding_nusd;
  unpriced_events += d.unpriced_events;
  estimated_events += d.estimated_events;
  upstream_us_spent += d.upstream_us_spent;
  upstream_us_saved += d.upstream_us_saved;
}

}  // namespace promptcache
