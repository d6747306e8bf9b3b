// The calibrated match decision's model for one embedder.
//
// A semantic candidate that no conflict vetoes (different numbers, names,
// operators, negations, opposite words...) is served when its match score,
// a logistic model over the embedder's similarity and lexical evidence
// (content words covered, synonyms, word order, length, question form),
// reaches the cut fitted for the target false-hit rate
// (SemanticOptions::target_false_hit_rate).
//
// The library ships the calibration of the built-in embedder (fitted on
// the evaluation sets in bench/README.md). For another embedder, fit one
// on labeled pairs of your traffic:
//
//   semantic_eval --embedder model2vec:DIR --pairs-tsv mine.tsv --fit out.json
//
// and load it with MatchCalibration::FromFile.
#ifndef PROMPTCACHE_MATCH_CALIBRATION_H_
#define PROMPTCACHE_MATCH_CALIBRATION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "promptcache/export.h"

namespace promptcache {

struct PROMPTCACHE_EXPORT MatchCalibration {
  // Name of the embedder it was fitted for (Embedder::name()). A cache
  // refuses to open with a calibration of another embedder.
  std::string embedder;
  // Feature names in the order of `weights`; must be the library's
  // (MatchFeatureNames()), so a file of another version is an error.
  std::vector<std::string> features;
  // The score's log-odds: bias + sum(weights[i] * feature[i]) + the sum of
  // the trees' leaf values (boosted trees; none for a plain logistic
  // model). A node with feature < 0 is a leaf; otherwise x[feature] <
  // threshold goes to `left`, else to `right` (indices into the tree, each
  // greater than its parent's).
  std::vector<double> weights;
  double bias = 0;
  struct TreeNode {
    int feature = -1;
    double threshold = 0;
    int left = -1;
    int right = -1;
    double value = 0;
  };
  std::vector<std::vector<TreeNode>> trees;
  // Score cuts: the lowest score at which the false-hit rate measured on
  // the calibration data stayed <= target on every set. Ascending targets.
  struct Cut {
    double target_false_hit_rate = 0;
    double score = 0;
    // Whether surface rewrites (the same words in the same order) are
    // served whatever their score at this target: only where their false
    // hits alone stayed within it on the calibration data.
    bool surface_rewrites = true;
  };
  std::vector<Cut> cuts;
  // What it was fitted on and when (free text, shown by tools).
  std::string fitted_on;

  // Parses the JSON written by `semantic_eval --fit`. InvalidArgument
  // naming the field for a malformed file, unknown or missing features,
  // non-finite weights, cuts out of [0, 1] or out of order.
  static absl::StatusOr<MatchCalibration> FromJson(absl::string_view json);
  static absl::StatusOr<MatchCalibration> FromFile(const std::string& path);
  // The calibration shipped with the library for `embedder_name`, or
  // NotFound.
  static absl::StatusOr<MatchCalibration> Shipped(
      absl::string_view embedder_name);

  std::string ToJson() const;

  // The checks FromJson makes, for a calibration built in code: the
  // library's features in order, finite weights, trees whose nodes name a
  // feature and point forward within the tree, cuts in [0, 1] in ascending
  // order of target. Open refuses an invalid SemanticOptions::calibration.
  absl::Status Validate() const;

  // The score cut for a target false-hit rate, interpolated between the
  // fitted targets (in log scale). InvalidArgument when the target is not
  // in (0, 0.5] or is below the smallest fitted target (the data cannot
  // vouch for it); a target above the largest fitted one uses that one's
  // cut.
  absl::StatusOr<double> CutFor(double target_false_hit_rate) const;

  // Whether surface rewrites bypass the cut at this target: the flag of
  // the largest fitted target not above it (false below them all).
  bool SurfaceRewritesAt(double target_false_hit_rate) const;

  // The probability that a pair with these feature values is the same
  // request. `values` has features.size() entries.
  double Score(absl::Span<const double> values) const;
};

// The library's match features, in the order calibrations list them.
PROMPTCACHE_EXPORT std::vector<std::string> MatchFeatureNameList();

}  // namespace promptcache

#endif  // PROMPTCACHE_MATCH_CALIBRATION_H_
