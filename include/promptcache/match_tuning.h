// Tuning the semantic tier's match decision on labeled pairs: what the
// decision sees in a (query, candidate) pair, whether a calibrated rule
// serves it, and fitting a calibration's score model. This is what
// `semantic_eval` measures and fits with, so that what it reports is what a
// cache serves; most programs need none of it (MatchCalibration::Shipped,
// or a file written by `semantic_eval --fit`, loaded with
// MatchCalibration::FromFile).
#ifndef PROMPTCACHE_MATCH_TUNING_H_
#define PROMPTCACHE_MATCH_TUNING_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "promptcache/export.h"
#include "promptcache/match_calibration.h"

namespace promptcache {

namespace internal {
class MatchDecider;
}  // namespace internal

// What the match decision sees in one pair.
struct PairEvidence {
  // Non-empty when the conflict veto makes them different requests
  // ("numbers differ: [10] vs [100]"); such a pair is never served.
  std::string veto;
  // The match features, in MatchFeatureNameList() order.
  std::vector<double> features;
  // The same words in the same order, differing only on the surface
  // (case, punctuation, spelling variants, contractions).
  bool surface_rewrite = false;
};

// Judges candidates against one query, analysed once. Thread-compatible.
class PROMPTCACHE_EXPORT PairJudge {
 public:
  explicit PairJudge(absl::string_view query);
  ~PairJudge();
  PairJudge(const PairJudge&) = delete;
  PairJudge& operator=(const PairJudge&) = delete;

  // `similarity`: the embedder's cosine similarity of the two texts.
  PairEvidence Judge(absl::string_view candidate, double similarity) const;

 private:
  std::unique_ptr<internal::MatchDecider> decider_;
};

// Whether a calibrated rule serves a pair the veto let through: its `score`
// (MatchCalibration::Score of its features) reaches `cut`, or
// `serve_surface_rewrites` (MatchCalibration::Cut::surface_rewrites) and
// it is a surface rewrite similar enough. The cache decides with this.
PROMPTCACHE_EXPORT bool CalibratedRuleServes(double similarity, double score,
                                             double cut,
                                             bool serve_surface_rewrites,
                                             bool surface_rewrite);

// One labeled pair for a fit: its features and whether it is the same
// request. Weights let each data set count the same whatever its size.
struct FitPair {
  std::vector<double> features;  // MatchFeatureNameList() order
  bool same_request = false;
  double weight = 1;
};

struct ScoreModelOptions {
  enum class Kind {
    // A logistic regression over the features.
    kLogistic,
    // Boosted trees (depth 5) correcting a logistic regression, with each
    // feature's direction fixed: more similarity or covered words never
    // lower the score; unmatched words, swaps, a different question kind
    // or unmatched names never raise it. The direction keeps a fit from
    // learning a data set's accidents.
    kBoostedTrees,
  };
  Kind kind = Kind::kBoostedTrees;
};

// Fits the score model of `calibration` (features, weights, bias, trees)
// on `pairs`; its embedder, cuts and fitted_on are the caller's to set.
// InvalidArgument naming the problem for no pairs, one class only, pairs
// whose features are not MatchFeatureNameList().size() long, non-finite
// values or weights.
PROMPTCACHE_EXPORT absl::Status FitScoreModel(absl::Span<const FitPair> pairs,
                                              const ScoreModelOptions& options,
                                              MatchCalibration* calibration);

}  // namespace promptcache

#endif  // PROMPTCACHE_MATCH_TUNING_H_
