// Advanced: the cache's tiers one call at a time, for tools, benchmarks and
// tests that look at one tier. A client uses Cache::Lookup and
// Cache::Record instead, which count every request in the ledger exactly
// once; calls made here count in the ledger only what each says (failures
// of the store and the embedder are also counted in CacheStats).
//
//   promptcache::CacheTiers tiers(*cache);
//   absl::StatusOr<promptcache::Response> hit = tiers.GetExact(key);
//
// Errors of these calls are returned to the caller (see "Failures" on
// Cache for what Lookup and Record do instead).
#ifndef PROMPTCACHE_CACHE_TIERS_H_
#define PROMPTCACHE_CACHE_TIERS_H_

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "promptcache/cache.h"
#include "promptcache/export.h"
#include "promptcache/keys.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace promptcache {

class PROMPTCACHE_EXPORT CacheTiers {
 public:
  // `cache` must outlive this view; the view is cheap to make.
  explicit CacheTiers(Cache& cache) : cache_(cache) {}

  // --- Exact tier ---

  // The stored answer for `exact_key`, or NotFound when absent or expired.
  // With several answers in the entry (a cache bucket), successive calls
  // return them round-robin. `answers_stored`, when not null, receives how
  // many answers the entry holds. Does not count anything in the ledger.
  absl::StatusOr<Response> GetExact(const Key128& exact_key,
                                    int* answers_stored = nullptr);

  // Counts one request answered without an upstream call (`how` is
  // kExactHit, kSemanticHit or kCoalesced) and fills `answer`'s
  // dollars_saved / priced / cache_status. `entry_key` is the entry that
  // answered; its hit counter is updated with the next stats flush.
  void RecordHit(const Request& request, const Key128& entry_key,
                 CacheStatus how, Response* answer);

  // Stores a complete answer of a miss together with the miss's ledger
  // delta in one atomic write; fills `answer`'s dollars_spent / priced /
  // stored / entry_key. With max_answers_per_key > 1 and temperature > 0 the
  // answer is appended to the entry's bucket, else it replaces the entry.
  // `ttl` overrides Options::default_ttl. Returns FailedPrecondition for an
  // incomplete answer (see IsCompleteFinishReason).
  // `replace` (force refresh) replaces a bucket instead of appending.
  // With a semantic tier, the last user turn's vector is stored in the same
  // write; `query_vector` (from FindSemantic) saves embedding it again, and
  // an empty one (FindSemantic could not embed) stores no vector rather
  // than asking a failing embedder twice.
  absl::Status StoreMiss(const Request& request,
                         const CanonicalizedRequest& canonical,
                         std::optional<absl::Duration> ttl, Response* answer,
                         bool replace = false,
                         const std::vector<float>* query_vector = nullptr);

  // Counts a miss that is not stored (bypass, no_store, incomplete answer)
  // and fills `answer`'s dollars_spent / priced; or, with `answer` null, an
  // upstream error. `coalesced`: the request waited for another call that
  // failed; it counts as a request only (the leader counted the miss and
  // the failed upstream call).
  absl::Status RecordUnstoredMiss(const Request& request, Response* answer,
                                  bool coalesced = false);

  // --- Semantic tier (needs Options::embedder) ---

  // A stored near-duplicate of `request`: same scope and context key, among
  // the top_k most similar, that the match decision serves (no conflict
  // veto, and a calibrated score >= the cut for
  // SemanticOptions::target_false_hit_rate and the entry's feedback; or,
  // when a threshold overrides the calibration, per call, else per
  // namespace, else SemanticOptions::threshold: similarity >= it), passing
  // the verifier, not reported wrong for this request, not expired. Of the
  // candidates served, the best-scoring one. Returns the answer with
  // similarity, entry_key and semantic_decision set, or NotFound whose
  // message says what decided (the best candidate's score and cut, or its
  // veto). `query_vector`, when not null, receives the embedding of the
  // last user turn. Errors: FailedPrecondition without an embedder; the
  // embedder's error, or InvalidArgument naming the embedder when it
  // returns a vector of the wrong dimension or with NaN/inf values. Counts
  // no request in the ledger; a paid embedder's cost is charged to it.
  absl::StatusOr<Response> FindSemantic(
      const Request& request, const RequestKeys& keys,
      std::optional<double> threshold = std::nullopt,
      std::vector<float>* query_vector = nullptr);

 private:
  Cache& cache_;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_CACHE_TIERS_H_
