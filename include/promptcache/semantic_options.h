// Options of the semantic (near-duplicate) tier.
#ifndef PROMPTCACHE_SEMANTIC_OPTIONS_H_
#define PROMPTCACHE_SEMANTIC_OPTIONS_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "promptcache/match_calibration.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace promptcache {

// Called for a candidate the match decision would serve; return false to
// refuse it. `matched_prompt` is the last user turn of the stored request.
using SemanticVerifier =
    std::function<bool(const Request& query, absl::string_view matched_prompt,
                       const Response& cached_answer, double similarity)>;

struct SemanticOptions {
  // Serve near-duplicates at all (needs Options::embedder). Default: true.
  // false (or CallOptions::semantic = false for one call): no semantic
  // work at all; entries stored through CachedClient get no vector.
  bool enabled = true;

  // The match decision. A candidate (same scope and conversation, among the
  // top_k most similar) is served when
  //   1. the conflict veto finds no hard difference: numbers, units,
  //      currencies, dates, names, identifiers, quoted strings, operators
  //      ("+" / "minus"), negation or opposite words (always on), and
  //   2. its calibrated match score, the probability that the two are the
  //      same request given the embedder's similarity and lexical evidence,
  //      reaches the cut that held the false-hit rate to this target on the
  //      calibration data (match_calibration.h, bench/README.md).
  // Default 0.01; in (0, 0.5] and not below the calibration's smallest
  // fitted target (0.001 for the shipped one; above its largest, 0.1, that
  // one's cut applies). Surface rewrites pass only at targets where the
  // calibration allows them (1% and up for the shipped one). The
  // calibrated rule never serves a similarity below 0.5.
  double target_false_hit_rate = 0.01;
  // The model; default: the one shipped for Options::embedder (the built-in
  // embedder at 128 dimensions). Fit your own with `semantic_eval --fit`.
  std::optional<MatchCalibration> calibration;
  // Override: serve a candidate the veto lets through when its cosine
  // similarity is >= threshold, ignoring the calibration. Per namespace
  // (namespace_threshold) and per call (CallOptions::threshold) likewise.
  std::optional<double> threshold;
  absl::flat_hash_map<std::string, double> namespace_threshold;
  // An embedder without a calibration (none shipped, none given) and
  // without a threshold is judged by similarity >= this, with the veto.
  double uncalibrated_threshold = 0.90;

  // Learning from feedback (Cache::ReportFalseHit / ConfirmSemanticHit): a
  // reported false hit is never served again for that pair; under the
  // calibrated rule it also raises the entry's own cut above the reported
  // pair's score (plus this margin) and stops surface rewrites of it
  // passing on their own. Threshold overrides read no bars.
  double feedback_margin = 0.02;
  // Confirmed hits lower an entry's cut by this much once enough were
  // confirmed without a reported false hit that the 95% upper bound on its
  // error rate is below target_false_hit_rate (3 / n, the rule of three:
  // 300 confirmations at 1%). A false hit reported after that raises it
  // above the reported pair's score again.
  double feedback_max_lowering = 0.05;

  // A last user turn longer than this many bytes skips the semantic tier:
  // no embedding, no lookup, no vector stored (the exact tier still serves
  // it; counted in SemanticStats::long_prompts_skipped). Embedding and
  // judging grow with the text (a 5 MB prompt took seconds), and a lexical
  // comparison of two long texts says little about a short difference in
  // them. 0: no limit. Default 32 KiB (~8k tokens).
  size_t max_prompt_bytes = 32 * 1024;

  // Candidates examined per lookup.
  int top_k = 8;

  // Optional last check before a semantic hit is served.
  SemanticVerifier verifier;

  // The vector index, one per scope (figures: bench/README.md, "Semantic
  // tier at scale"):
  //  - kIvf (default): inverted lists that split in two as they grow (at
  //    sqrt(n)/2 vectors for a scope of n, between 64 and
  //    ivf_max_list_size); a lookup scans the ivf_probes lists nearest the
  //    query, exactly (so a small scope, ~1k vectors, is searched
  //    exhaustively). Cheap inserts, no training pass.
  //  - kFlat: exact search; its cost grows with the scope (~1 ms at 50k).
  //  - kHnsw: FAISS's HNSW graph from hnsw_min_vectors on, exact below.
  enum class IndexKind { kIvf, kFlat, kHnsw };
  IndexKind index = IndexKind::kIvf;
  int ivf_probes = 16;          // in [1, 65536]
  int ivf_max_list_size = 512;  // in [16, 1048576]
  int hnsw_min_vectors = 4096;
  int hnsw_m = 16;
  int hnsw_ef_construction = 64;
  int hnsw_ef_search = 32;

  // A store writes its vector with the entry, then queues it for a
  // background thread that adds vectors to the index in batches. Lookups
  // also search the queue, so a stored entry is found by similarity at
  // once. A store waits while this many vectors are queued (>= 1).
  int max_queued_vectors = 16384;

  // When index files saved at close are missing or stale (after a crash),
  // Open rebuilds those scopes from the stored vectors. true (default): on
  // a background thread, so that Open returns at once and exact hits are
  // served meanwhile; semantic lookups see the vectors added so far (fewer
  // hits, never a wrong one) until it ends (Cache::WaitForSemanticIndex).
  // false: inside Open.
  bool rebuild_index_in_background = true;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_SEMANTIC_OPTIONS_H_
