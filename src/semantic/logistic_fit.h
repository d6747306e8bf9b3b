// Weighted, L2-regularized logistic regression fitted by Newton's method:
// small, deterministic and exact enough to calibrate the match score
// (semantic_eval --fit). No randomness: the same examples give the same
// weights.
#ifndef PROMPTCACHE_SRC_SEMANTIC_LOGISTIC_FIT_H_
#define PROMPTCACHE_SRC_SEMANTIC_LOGISTIC_FIT_H_

#include <vector>

#include "absl/status/statusor.h"

namespace promptcache::internal {

struct FitExample {
  std::vector<double> x;
  bool label = false;
  double weight = 1;
};

struct LogisticModel {
  // On the raw (unstandardized) features: p = 1 / (1 + exp(-(bias + w.x))).
  std::vector<double> weights;
  double bias = 0;
  int iterations = 0;
};

// Checks what both fits need: examples, of one length, finite, with
// positive weights and both labels. Fills the total weight of each label.
absl::Status ValidateFitExamples(const std::vector<FitExample>& examples,
                                 double* positive_weight,
                                 double* negative_weight);

// InvalidArgument for no examples, one class only, ragged or non-finite
// features.
absl::StatusOr<LogisticModel> FitLogistic(
    const std::vector<FitExample>& examples, double l2 = 1e-2);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_LOGISTIC_FIT_H_
