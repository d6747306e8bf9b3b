// The match score's inputs: how likely two prompts are the same request,
// from the embedder's similarity plus lexical evidence. Each feature is a
// number read off the pair; MatchCalibration (match_calibration.h) weighs
// them into a probability.
#ifndef PROMPTCACHE_SRC_SEMANTIC_MATCH_FEATURES_H_
#define PROMPTCACHE_SRC_SEMANTIC_MATCH_FEATURES_H_

#include <array>

#include "absl/types/span.h"
#include "semantic/prompt_analysis.h"

namespace promptcache::internal {

class Lexicon;

enum MatchFeature {
  kCosine,           // the embedder's cosine similarity
  kCoverMin,         // least fraction of one side's content words accounted
  kCoverMean,        // mean of both sides' fractions
  kUnmatched,        // log(1 + content words unaccounted on both sides)
  kSubstituted,      // min of the two sides' unaccounted counts (<= 3)
  kOrderSwaps,       // fraction of shared non-stop word pairs swapped
  kHardOrderSwaps,   // the same for names, dates, units and identifiers
  kSameOrder,        // 1: every word accounted for, nothing swapped
  kLengthRatio,      // (shorter + 1) / (longer + 1), in content words
  kLogLength,        // log(1 + the longer side's content words)
  kQuestionDiffers,  // the question kinds differ (QuestionKindsDiffer)
  kNamesUnmatched,   // capitalized words unaccounted (<= 2)
  kSynonymShare,     // fraction of accounted words matched by synonym
  kNumMatchFeatures,
};

using MatchFeatures = std::array<double, kNumMatchFeatures>;

// Names as written in calibration files, in enum order.
absl::Span<const char* const> MatchFeatureNames();

// A surface rewrite: the same non-stop words (as lemmas, so inflection and
// spelling aside) in the same order, the same question kind, the same
// negations, persons and tense: the two differ only in case, punctuation,
// stop words and framing ("how do I" / "how can I", "please"). Symmetric.
bool IsSurfaceRewrite(const PromptAnalysis& a, const PromptAnalysis& b);

// Symmetric in (a, b).
MatchFeatures ComputeMatchFeatures(const PromptAnalysis& a,
                                   const PromptAnalysis& b, double cosine,
                                   const Lexicon& lexicon);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_MATCH_FEATURES_H_
