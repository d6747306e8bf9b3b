// Options of the semantic (near-duplicate) tier.
#ifndef PROMPTCACHE_SEMANTIC_OPTIONS_H_
#define PROMPTCACHE_SEMANTIC_OPTIONS_H_

#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace promptcache {

// Called for a candidate that passed similarity and guard; return false to
// refuse it. `matched_prompt` is the last user turn of the stored request.
using SemanticVerifier =
    std::function<bool(const Request& query, absl::string_view matched_prompt,
                       const Response& cached_answer, double similarity)>;

struct SemanticOptions {
  // Serve near-duplicates at all (needs Options::embedder). Default: true.
  bool enabled = true;

  // Cosine similarity a candidate needs. The default was chosen on the
  // evaluation sets in bench/README.md for the built-in embedder: at it,
  // false hits stay <= 1% of negatives on every set. Other embedders need
  // their own threshold (run tools/semantic_eval).
  double threshold = 0.82;
  // Per-namespace thresholds; a per-call threshold beats both.
  absl::flat_hash_map<std::string, double> namespace_threshold;

  // Candidates examined per lookup.
  int top_k = 8;

  // Reject candidates whose numbers, units, currencies, dates, negations,
  // opposite verbs, quoted strings, identifiers or names differ. Turning it
  // off is for measurement only.
  bool guard = true;
  // Fraction of content words that may lack a counterpart (see the guard).
  double guard_max_unmatched_fraction = 0.25;
  // Fraction of shared word pairs that may appear in swapped order ("Paris
  // to Rome" vs "Rome to Paris"); negative turns the order check off.
  double guard_max_swapped_fraction = 0;

  // Optional last check before a semantic hit is served.
  SemanticVerifier verifier;

  // Index: exact search below this many vectors per scope, HNSW above.
  int hnsw_min_vectors = 4096;
  int hnsw_m = 16;
  int hnsw_ef_construction = 64;
  int hnsw_ef_search = 32;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_SEMANTIC_OPTIONS_H_
