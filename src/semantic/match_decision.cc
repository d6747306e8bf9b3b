#include "semantic/match_decision.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "semantic/conflict_veto.h"
#include "semantic/lexicon.h"

namespace promptcache::internal {

std::string MatchDecision::Explain(bool with_words) const {
  if (!veto.empty()) {
    return absl::StrCat("veto: ",
                        with_words ? veto : veto.substr(0, veto.find(':')));
  }
  if (too_dissimilar) {
    return absl::StrFormat("similarity %.4f < %.2f", features[kCosine],
                           kMinCalibratedSimilarity);
  }
  if (surface_rewrite && serve && score < cut) {
    return absl::StrFormat(
        "surface rewrite: the same words in the same order (score %.4f)",
        score);
  }
  std::string line =
      absl::StrFormat("score %.4f %s cut %.4f", score, serve ? ">=" : "<", cut);
  if (!serve) {
    // The lexical evidence that weighed most against it.
    if (features[kCoverMin] < 1) {
      absl::StrAppendFormat(&line, " (cover_min %.2f", features[kCoverMin]);
      if (features[kOrderSwaps] > 0) {
        absl::StrAppendFormat(&line, ", order_swaps %.2f",
                              features[kOrderSwaps]);
      }
      line += ")";
    } else if (features[kOrderSwaps] > 0) {
      absl::StrAppendFormat(&line, " (order_swaps %.2f)",
                            features[kOrderSwaps]);
    }
  }
  return line;
}

bool CalibratedRuleServes(double similarity, double score, double cut,
                          bool surface_rewrites, bool is_surface_rewrite) {
  return similarity >= kMinCalibratedSimilarity &&
         ((cut < 1 && score >= cut) ||
          (surface_rewrites && is_surface_rewrite &&
           similarity >= kMinSurfaceSimilarity));
}

MatchDecider::MatchDecider(absl::string_view query, const MatchRule& rule,
                           const Lexicon& lexicon)
    : query_text_(query),
      query_(AnalyzePrompt(query, lexicon)),
      rule_(rule),
      lexicon_(lexicon),
      similarity_floor_(
          rule.calibration != nullptr
              ? std::max(rule.similarity_floor, kMinCalibratedSimilarity)
              : rule.min_similarity),
      number_signature_(NumberSignature(query_)) {}

MatchDecision MatchDecider::Decide(absl::string_view candidate,
                                   double similarity,
                                   std::optional<double> entry_cut,
                                   bool entry_reported_wrong) const {
  MatchDecision d;
  const PromptAnalysis other = AnalyzePrompt(candidate, lexicon_);
  d.veto = FindConflict(query_text_, query_, candidate, other, lexicon_);
  d.features = ComputeMatchFeatures(query_, other, similarity, lexicon_);
  if (rule_.calibration != nullptr) {
    d.score = rule_.calibration->Score(d.features);
    d.cut = entry_cut.value_or(rule_.cut);
  } else {
    d.score = similarity;
    d.cut = rule_.min_similarity;
  }
  d.surface_rewrite = IsSurfaceRewrite(query_, other);
  // Surface rewrites pass the calibrated rule whatever their score, unless
  // feedback reported a false hit of the entry; a threshold override means
  // what it says. A cut of 1 serves nothing by score.
  if (rule_.calibration != nullptr) {
    d.too_dissimilar = similarity < kMinCalibratedSimilarity;
    d.serve = d.veto.empty() && CalibratedRuleServes(similarity, d.score, d.cut,
                                                     rule_.surface_rewrites &&
                                                         !entry_reported_wrong,
                                                     d.surface_rewrite);
  } else {
    d.serve = d.veto.empty() && d.score >= d.cut;
  }
  return d;
}

namespace {

// Feasible range of each feature other than the cosine, given the cosine.
struct Box {
  double lo[kNumMatchFeatures];
  double hi[kNumMatchFeatures];
};

Box FeasibleBox(double cosine) {
  Box b;
  const auto set = [&](int f, double lo, double hi) {
    b.lo[f] = lo;
    b.hi[f] = hi;
  };
  set(kCosine, cosine, cosine);
  set(kCoverMin, 0, 1);
  set(kCoverMean, 0, 1);
  set(kUnmatched, 0, std::log1p(128));
  set(kSubstituted, 0, 3);
  set(kOrderSwaps, 0, 1);
  set(kHardOrderSwaps, 0, 1);
  set(kSameOrder, 0, 1);
  set(kLengthRatio, 0, 1);
  set(kLogLength, 0, std::log1p(64));
  set(kQuestionDiffers, 0, 1);
  set(kNamesUnmatched, 0, 2);
  set(kSynonymShare, 0, 1);
  return b;
}

// The largest leaf value of `tree` reachable by a point of `box`.
double MaxLeaf(const std::vector<MatchCalibration::TreeNode>& tree, int i,
               const Box& box) {
  const MatchCalibration::TreeNode& n = tree[i];
  if (n.feature < 0) return n.value;
  double best = -std::numeric_limits<double>::infinity();
  if (box.lo[n.feature] < n.threshold) {
    best = std::max(best, MaxLeaf(tree, n.left, box));
  }
  if (box.hi[n.feature] >= n.threshold) {
    best = std::max(best, MaxLeaf(tree, n.right, box));
  }
  return best;
}

}  // namespace

double SimilarityFloor(const MatchCalibration& calibration, double cut) {
  // The best score reachable at a cosine: every other feature at its most
  // favourable feasible value (per term, so an upper bound). Bisection
  // assumes the score rises with the cosine (the trees are fitted monotone
  // in it; a negative linear weight makes the floor lower, never higher,
  // than exact: only less pruning).
  const auto best = [&](double cosine) {
    const Box box = FeasibleBox(cosine);
    double z = calibration.bias;
    for (int i = 0; i < kNumMatchFeatures; ++i) {
      const double w = i < static_cast<int>(calibration.weights.size())
                           ? calibration.weights[i]
                           : 0;
      z += std::max(w * box.lo[i], w * box.hi[i]);
    }
    for (const auto& tree : calibration.trees) z += MaxLeaf(tree, 0, box);
    return 1.0 / (1.0 + std::exp(-z));
  };
  if (best(1.0) < cut) return 1.0;  // nothing can pass: search nothing
  if (best(-1.0) >= cut) return -1.0;
  double lo = -1, hi = 1;
  for (int i = 0; i < 40; ++i) {
    const double mid = (lo + hi) / 2;
    (best(mid) >= cut ? hi : lo) = mid;
  }
  return lo;
}

}  // namespace promptcache::internal
