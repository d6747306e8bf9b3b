// A model's answer, plus how promptcache produced it.
#ifndef PROMPTCACHE_RESPONSE_H_
#define PROMPTCACHE_RESPONSE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "promptcache/export.h"
#include "promptcache/keys.h"

namespace promptcache {

// Token counts in the OpenAI convention: `input_tokens` is the whole prompt,
// including the `cached_input_tokens` read from the provider's prompt cache
// and the `cache_write_input_tokens` written to it.
struct Usage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t cached_input_tokens = 0;
  int64_t cache_write_input_tokens = 0;
  // True when the counts are estimates, not the backend's report. When a
  // Response has all-zero counts, promptcache estimates them from the text
  // (about 4 bytes per token) and sets this. Reports flag such figures.
  bool estimated = false;
};

// How a response was produced.
enum class CacheStatus {
  kMiss,         // answered by the upstream model
  kExactHit,     // answered from the exact tier
  kSemanticHit,  // answered from the semantic tier
  kCoalesced,    // waited for an identical in-flight upstream call
  kBypass,   // CallOptions::bypass: upstream, cache neither read nor written
  kRefresh,  // CallOptions::force_refresh: upstream, then stored
};

PROMPTCACHE_EXPORT const char* CacheStatusName(CacheStatus status);

// A model's answer: what the cache stores and serves again.
struct Answer {
  std::string text;
  // Tool calls as a JSON array text (OpenAI `tool_calls` shape); empty: none.
  std::string tool_calls_json;
  // "stop", "tool_calls", "end_turn", "stop_sequence", "tool_use" mean a
  // complete answer and are cacheable. Anything else ("length",
  // "max_tokens", "content_filter", "error", or empty) is returned to the
  // caller but never cached.
  std::string finish_reason;
  Usage usage;
  // How long the upstream call took when the answer was produced. A
  // ModelClient may set it (e.g. the provider's own timing); when it is zero,
  // CachedClient measures the call. Hits report it as latency saved.
  absl::Duration upstream_latency = absl::ZeroDuration();
};

// An answer as served to one call: the answer, and how promptcache produced
// it. A ModelClient returns a Response; its served fields are dropped and
// set afresh by the cache (Cache::Record).
struct Response : Answer {
  // Filled by CachedClient (Cache::Lookup / Cache::Record).
  CacheStatus cache_status = CacheStatus::kMiss;
  // Dollars this call did not spend because it was served from the cache;
  // 0 on a miss. Meaningful only when `priced` is true.
  double dollars_saved = 0;
  // Dollars this call spent upstream (misses only).
  double dollars_spent = 0;
  // False when the backend/model has no price: the call is reported as
  // unpriced, never as $0.
  bool priced = false;
  // Whether a miss was stored (false for incomplete answers, no_store...).
  bool stored = false;
  // Exact key of the entry that answered (hits) or was written (misses);
  // none when no entry did (upstream answers not stored).
  std::optional<Key128> entry_key;
  // Exact key of this request. With entry_key, identifies a served
  // semantic hit for Cache::ReportFalseHit.
  std::optional<Key128> request_key;
  // Cosine similarity of a semantic hit (1 for exact hits, 0 for misses;
  // a coalesced call has its leader's).
  double similarity = 0;
  // What the semantic tier decided, in one line: for a semantic hit its
  // score and cut; for a miss that had candidates, the best one's score
  // and cut or the conflict that vetoed it. Empty when it did not look.
  std::string semantic_decision;
};

// True for finish reasons that mean a complete answer (see above).
PROMPTCACHE_EXPORT bool IsCompleteFinishReason(
    const std::string& finish_reason);

}  // namespace promptcache

#endif  // PROMPTCACHE_RESPONSE_H_
