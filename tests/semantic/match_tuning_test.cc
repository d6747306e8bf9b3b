// The public tuning API (promptcache/match_tuning.h) as semantic_eval uses
// it: the evidence of a pair, the calibrated rule, and fitting a score
// model that the library then accepts and scores with.
#include "promptcache/match_tuning.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace promptcache {
namespace {

TEST(MatchTuningTest, AJudgeReportsVetoesFeaturesAndSurfaceRewrites) {
  const PairJudge judge("What is 10 plus 5?");
  const PairEvidence numbers = judge.Judge("What is 100 plus 5?", 0.97);
  EXPECT_NE(numbers.veto.find("number"), std::string::npos) << numbers.veto;

  const PairEvidence operators = judge.Judge("What is 10 minus 5?", 0.97);
  EXPECT_FALSE(operators.veto.empty());

  const PairEvidence same = judge.Judge("what is 10 plus 5", 0.99);
  EXPECT_TRUE(same.veto.empty()) << same.veto;
  EXPECT_TRUE(same.surface_rewrite);
  const std::vector<std::string> names = MatchFeatureNameList();
  ASSERT_EQ(same.features.size(), names.size());
  EXPECT_EQ(names[0], "cosine");
  EXPECT_DOUBLE_EQ(same.features[0], 0.99);

  const PairJudge capital("Capital of Canada");
  const PairEvidence rewrite =
      capital.Judge("What is the capital city of Canada?", 0.9);
  EXPECT_TRUE(rewrite.veto.empty()) << rewrite.veto;
  EXPECT_FALSE(rewrite.surface_rewrite);
}

TEST(MatchTuningTest, TheCalibratedRuleServesAtTheCutOrASimilarSurfaceRewrite) {
  EXPECT_TRUE(CalibratedRuleServes(0.9, 0.95, 0.9, false, false));
  EXPECT_FALSE(CalibratedRuleServes(0.9, 0.85, 0.9, false, false));
  // A surface rewrite passes below the cut only where the cut allows it,
  // and only when similar enough.
  EXPECT_TRUE(CalibratedRuleServes(0.95, 0.2, 0.9, true, true));
  EXPECT_FALSE(CalibratedRuleServes(0.95, 0.2, 0.9, false, true));
  EXPECT_FALSE(CalibratedRuleServes(0.3, 0.2, 0.9, true, true));
  // Too dissimilar is never served, whatever the score.
  EXPECT_FALSE(CalibratedRuleServes(0.1, 0.99, 0.9, true, false));
}

// Pairs whose label follows cosine and cover, with noise.
std::vector<FitPair> SyntheticPairs(int n) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  const size_t width = MatchFeatureNameList().size();
  std::vector<FitPair> pairs;
  for (int i = 0; i < n; ++i) {
    FitPair p;
    p.same_request = i % 2 == 0;
    p.features.assign(width, 0.0);
    p.features[0] = p.same_request ? 0.8 + 0.2 * u(rng) : 0.5 + 0.4 * u(rng);
    p.features[1] = p.same_request ? 0.7 + 0.3 * u(rng) : 0.6 * u(rng);
    pairs.push_back(std::move(p));
  }
  return pairs;
}

TEST(MatchTuningTest, AFittedModelIsValidAndRanksPairsByTheirEvidence) {
  const std::vector<FitPair> pairs = SyntheticPairs(400);
  for (ScoreModelOptions::Kind kind :
       {ScoreModelOptions::Kind::kLogistic,
        ScoreModelOptions::Kind::kBoostedTrees}) {
    MatchCalibration c;
    c.embedder = "builtin";
    ScoreModelOptions options;
    options.kind = kind;
    ASSERT_TRUE(FitScoreModel(pairs, options, &c).ok());
    EXPECT_EQ(c.trees.empty(), kind == ScoreModelOptions::Kind::kLogistic);
    c.cuts.push_back({0.01, 0.9, true});
    EXPECT_TRUE(c.Validate().ok()) << c.Validate();
    std::vector<double> likely(pairs[0].features.size(), 0.0);
    std::vector<double> unlikely = likely;
    likely[0] = 0.95;
    likely[1] = 0.95;
    unlikely[0] = 0.6;
    unlikely[1] = 0.1;
    EXPECT_GT(c.Score(likely), 0.9);
    EXPECT_LT(c.Score(unlikely), 0.1);
    // What it writes loads back the same.
    absl::StatusOr<MatchCalibration> back =
        MatchCalibration::FromJson(c.ToJson());
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_DOUBLE_EQ(back->Score(likely), c.Score(likely));
  }
}

TEST(MatchTuningTest, AFitRefusesDataItCannotLearnFrom) {
  MatchCalibration c;
  EXPECT_EQ(FitScoreModel({}, {}, &c).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<FitPair> short_pairs = SyntheticPairs(10);
  short_pairs[3].features.pop_back();
  absl::Status s = FitScoreModel(short_pairs, {}, &c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("fit pair 3"), std::string::npos) << s;
  std::vector<FitPair> one_class = SyntheticPairs(10);
  for (FitPair& p : one_class) p.same_request = true;
  EXPECT_EQ(FitScoreModel(one_class, {}, &c).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<FitPair> not_finite = SyntheticPairs(10);
  not_finite[0].features[2] = std::nan("");
  EXPECT_EQ(FitScoreModel(not_finite, {}, &c).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<FitPair> infinite_weight = SyntheticPairs(10);
  infinite_weight[4].weight = INFINITY;
  EXPECT_EQ(FitScoreModel(infinite_weight, {}, &c).code(),
            absl::StatusCode::kInvalidArgument);
  // A failed fit leaves the calibration as it was.
  EXPECT_TRUE(c.weights.empty());
  EXPECT_TRUE(c.trees.empty());
}

}  // namespace
}  // namespace promptcache
