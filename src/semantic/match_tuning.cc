// The public tuning calls (match_tuning.h) over the match decision and the
// fitters it is calibrated with.
#include "promptcache/match_tuning.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "semantic/lexicon.h"
#include "semantic/logistic_fit.h"
#include "semantic/match_decision.h"
#include "semantic/match_features.h"
#include "semantic/tree_fit.h"

namespace promptcache {
namespace {

// The direction each feature may move a boosted score in
// (ScoreModelOptions::kBoostedTrees): +1 never lowers it, -1 never raises
// it, 0 free (length and synonym share).
std::vector<int> MonotoneConstraints() {
  using namespace internal;  // NOLINT: the feature enum
  std::vector<int> m(kNumMatchFeatures, 0);
  m[kCosine] = m[kCoverMin] = m[kCoverMean] = m[kLengthRatio] = m[kSameOrder] =
      1;
  m[kUnmatched] = m[kSubstituted] = m[kOrderSwaps] = m[kHardOrderSwaps] =
      m[kQuestionDiffers] = m[kNamesUnmatched] = -1;
  return m;
}

}  // namespace

PairJudge::PairJudge(absl::string_view query)
    : decider_(std::make_unique<internal::MatchDecider>(
          // No rule: the features alone (the caller applies a rule).
          query, internal::MatchRule(), internal::Lexicon::Default())) {}

PairJudge::~PairJudge() = default;

PairEvidence PairJudge::Judge(absl::string_view candidate,
                              double similarity) const {
  internal::MatchDecision d = decider_->Decide(candidate, similarity);
  PairEvidence out;
  out.veto = std::move(d.veto);
  out.features.assign(d.features.begin(), d.features.end());
  out.surface_rewrite = d.surface_rewrite;
  return out;
}

bool CalibratedRuleServes(double similarity, double score, double cut,
                          bool serve_surface_rewrites, bool surface_rewrite) {
  return internal::CalibratedRuleServes(
      similarity, score, cut, serve_surface_rewrites, surface_rewrite);
}

absl::Status FitScoreModel(absl::Span<const FitPair> pairs,
                           const ScoreModelOptions& options,
                           MatchCalibration* calibration) {
  std::vector<internal::FitExample> examples;
  examples.reserve(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (pairs[i].features.size() != internal::kNumMatchFeatures) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fit pair ", i, " has ", pairs[i].features.size(),
          " features; the match decision has ", internal::kNumMatchFeatures));
    }
    if (!std::isfinite(pairs[i].weight) || pairs[i].weight <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("fit pair ", i, " has weight ", pairs[i].weight,
                       "; weights must be finite and positive"));
    }
    examples.push_back(
        {pairs[i].features, pairs[i].same_request, pairs[i].weight});
  }
  // FitLogistic checks the rest (no pairs, one class, non-finite values).
  absl::StatusOr<internal::LogisticModel> linear =
      internal::FitLogistic(examples);
  if (!linear.ok()) return linear.status();
  // Built aside: `calibration` changes only when the whole fit succeeds.
  MatchCalibration fitted = *calibration;
  fitted.features = MatchFeatureNameList();
  fitted.weights = linear->weights;
  fitted.bias = linear->bias;
  fitted.trees.clear();
  if (options.kind == ScoreModelOptions::Kind::kLogistic) {
    *calibration = std::move(fitted);
    return absl::OkStatus();
  }
  // Trees correct the logistic model: the sum is smooth where the trees
  // are flat, so that a cut can fall between any two pairs.
  internal::TreeFitOptions tree_options;
  tree_options.linear_weights = linear->weights;
  tree_options.linear_bias = linear->bias;
  tree_options.monotone = MonotoneConstraints();
  absl::StatusOr<internal::BoostedTrees> trees =
      internal::FitBoostedTrees(examples, tree_options);
  if (!trees.ok()) return trees.status();
  fitted.bias = trees->bias;
  fitted.trees = std::move(trees->trees);
  *calibration = std::move(fitted);
  return absl::OkStatus();
}

}  // namespace promptcache
