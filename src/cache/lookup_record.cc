// The protocol between a client and the cache: Lookup (exact tier, then
// semantic; counts a hit) and Record (how a call that was not served
// ended: stores and counts a miss, or counts a failure or a coalesced
// wait). Each request is counted in the ledger once, by one of the two.
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cache/cache_impl.h"
#include "promptcache/cache.h"
#include "request/canonical_internal.h"

namespace promptcache {

bool Cache::Impl::BucketFull(const Request& request, int answers_stored) const {
  const int n = options_.max_answers_per_key;
  return n <= 1 || request.params.temperature.value_or(1.0) <= 0 ||
         answers_stored >= n;
}

bool Cache::Impl::ServeExact(const Request& request, const Key128& key,
                             LookupResult* lookup) {
  int answers = 0;
  absl::StatusOr<Response> hit = GetExact(key, &answers);
  // A store that cannot be read makes a miss (GetExact counted it).
  if (!hit.ok() || !BucketFull(request, answers)) return false;
  RecordHit(request, key, CacheStatus::kExactHit, &*hit);
  hit->request_key = key;
  hit->similarity = 1;
  lookup->hit = *std::move(hit);
  return true;
}

absl::Status Cache::Impl::Lookup(const Request& request,
                                 const LookupOptions& options,
                                 LookupResult* lookup) {
  using Tiers = LookupOptions::Tiers;
  lookup->hit.reset();
  lookup->semantic =
      semantic_on() && options.semantic.value_or(options_.semantic.enabled);
  bool exact_read = false;
  if (!lookup->canonicalized) {
    // An exact hit needs only the exact key: the canonical string, the
    // scope and context keys wait for a miss.
    if (options.tiers != Tiers::kNone &&
        internal::ExactKeyOf(request, options_.canonical, &lookup->exact_key)) {
      if (ServeExact(request, lookup->exact_key, lookup)) {
        return absl::OkStatus();
      }
      exact_read = true;
    }
    absl::StatusOr<CanonicalizedRequest> canonical =
        Canonicalize(request, options_.canonical);
    if (!canonical.ok()) return canonical.status();
    lookup->canonical = *std::move(canonical);
    lookup->exact_key = lookup->canonical.keys.exact;
    lookup->canonicalized = true;
  }
  if (options.tiers == Tiers::kNone) return absl::OkStatus();
  if (!exact_read && ServeExact(request, lookup->exact_key, lookup)) {
    return absl::OkStatus();
  }
  if (options.tiers != Tiers::kExactAndSemantic || !lookup->semantic) {
    return absl::OkStatus();
  }
  lookup->semantic_looked = true;
  lookup->query_vector.clear();
  absl::StatusOr<Response> near =
      FindSemantic(request, lookup->canonical.keys, options.threshold,
                   &lookup->query_vector);
  if (!near.ok()) {
    // Any other failure (the embedder's, the store's) was counted by
    // FindSemantic; the call goes on as a miss.
    lookup->semantic_decision = std::string(near.status().message());
    return absl::OkStatus();
  }
  // RecordHit logs the pair (request, entry) for feedback.
  near->request_key = lookup->exact_key;
  RecordHit(request, near->entry_key.value_or(lookup->exact_key),
            CacheStatus::kSemanticHit, &*near);
  lookup->semantic_decision = near->semantic_decision;
  lookup->hit = *std::move(near);
  return absl::OkStatus();
}

namespace {

// An upstream answer as this call's: the fields a ModelClient may have set
// beyond the answer itself are not ours to pass on.
void KeepOnlyTheAnswer(Response* response) {
  Answer answer = std::move(*response);
  *response = Response();
  static_cast<Answer&>(*response) = std::move(answer);
}

}  // namespace

void Cache::Impl::Record(const Request& request, const LookupResult& lookup,
                         const Outcome& outcome, Response* answer) {
  using Kind = Outcome::Kind;
  Kind kind = outcome.kind;
  // Without an answer there is nothing to serve: a failure.
  if (answer == nullptr && kind == Kind::kCoalesced) {
    kind = Kind::kCoalescedFailed;
  } else if (answer == nullptr &&
             (kind == Kind::kAnswered || kind == Kind::kBypassed)) {
    kind = Kind::kUpstreamFailed;
  }
  if (answer != nullptr && kind != Kind::kCoalesced) KeepOnlyTheAnswer(answer);
  if (answer != nullptr) answer->request_key = lookup.exact_key;
  absl::Status counted;
  switch (kind) {
    case Kind::kCoalesced:
      // The leader's entry answered: a semantic hit's own, else ours.
      RecordHit(request, answer->entry_key.value_or(lookup.exact_key),
                CacheStatus::kCoalesced, answer);
      return;
    case Kind::kCoalescedFailed:
      counted = RecordUnstoredMiss(request, nullptr, /*coalesced=*/true);
      break;
    case Kind::kUpstreamFailed:
      counted = RecordUnstoredMiss(request, nullptr, /*coalesced=*/false);
      break;
    case Kind::kBypassed:
      answer->cache_status = CacheStatus::kBypass;
      counted = RecordUnstoredMiss(request, answer, /*coalesced=*/false);
      break;
    case Kind::kAnswered: {
      answer->cache_status =
          outcome.replace ? CacheStatus::kRefresh : CacheStatus::kMiss;
      answer->semantic_decision = lookup.semantic_decision;
      if (!outcome.store || !lookup.canonicalized ||
          !IsCompleteFinishReason(answer->finish_reason)) {
        counted = RecordUnstoredMiss(request, answer, /*coalesced=*/false);
        break;
      }
      // After a semantic lookup its vector (or its failure: empty) is
      // reused; with the semantic tier off for this request the entry gets
      // no vector (an empty one says so); a refresh, which did not look,
      // has StoreMiss embed.
      static const std::vector<float> kNoVector;
      const std::vector<float>* vector = nullptr;
      if (lookup.semantic_looked) {
        vector = &lookup.query_vector;
      } else if (!lookup.semantic) {
        vector = &kNoVector;
      }
      absl::Status stored = StoreMiss(request, lookup.canonical, outcome.ttl,
                                      outcome.replace, vector, answer);
      if (stored.ok()) return;
      // The answer is good even when storing failed: counted as unstored.
      // StoreMiss counted its failed write; the same fault failing this
      // ledger write is not counted twice.
      RecordUnstoredMiss(request, answer, /*coalesced=*/false).IgnoreError();
      return;
    }
  }
  // A ledger write that fails loses one request's counts, never an answer;
  // counted like any write failure (a read-only cache counts nothing).
  if (!counted.ok() && !options_.read_only) {
    NoteFailure(Failure::kStore, counted);
  }
}

}  // namespace promptcache
