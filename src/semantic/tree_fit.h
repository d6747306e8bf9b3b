// Gradient-boosted shallow trees for the logistic loss, with monotone
// constraints: the match score's model when a straight line through the
// features cannot tell a long rewrite from a short look-alike (semantic_eval
// --fit). Deterministic: histogram splits on quantile bins, no sampling.
#ifndef PROMPTCACHE_SRC_SEMANTIC_TREE_FIT_H_
#define PROMPTCACHE_SRC_SEMANTIC_TREE_FIT_H_

#include <vector>

#include "absl/status/statusor.h"
#include "promptcache/match_calibration.h"
#include "semantic/logistic_fit.h"

namespace promptcache::internal {

struct TreeFitOptions {
  // Chosen on the dev sets' held-out halves (bench/README.md): deeper
  // trees express "every word accounted for, in the same order" at once.
  int trees = 300;
  int depth = 5;
  double learning_rate = 0.1;
  double l2 = 1.0;                 // on leaf values, in units of total weight
  double min_child_weight = 1e-3;  // fraction of the total weight
  int bins = 64;
  // Per feature: +1 the score may only rise with it, -1 only fall, 0 free.
  std::vector<int> monotone;
  // A linear model the trees correct (its log-odds are the starting
  // score): the sum is smooth where the trees are flat, so that a cut can
  // fall between any two pairs. Empty: start from the base rate.
  std::vector<double> linear_weights;
  double linear_bias = 0;
};

struct BoostedTrees {
  // Includes the linear model's bias, when given.
  double bias = 0;
  std::vector<std::vector<MatchCalibration::TreeNode>> trees;
};

// InvalidArgument for no examples, one class only, ragged or non-finite
// features, or a `monotone` of the wrong length.
absl::StatusOr<BoostedTrees> FitBoostedTrees(
    const std::vector<FitExample>& examples, const TreeFitOptions& options);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_TREE_FIT_H_
