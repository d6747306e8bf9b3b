// The semantic tier's decision for one query against its candidates: the
// conflict veto first (always on), then either the calibrated match score
// against the cut for the target false-hit rate, or, when a similarity
// threshold overrides it, the embedder's similarity against that.
#ifndef PROMPTCACHE_SRC_SEMANTIC_MATCH_DECISION_H_
#define PROMPTCACHE_SRC_SEMANTIC_MATCH_DECISION_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "promptcache/match_calibration.h"
#include "semantic/match_features.h"
#include "semantic/prompt_analysis.h"

namespace promptcache::internal {

class Lexicon;

// The calibrated rule never serves a pair its embedder finds less similar
// than this, whatever the lexical evidence: words alone ("can you help me"
// / "can you tell me") do not make two requests the same.
inline constexpr double kMinCalibratedSimilarity = 0.5;
// A surface rewrite passes on its own only this similar: the words it
// drops or adds are stop words, and a low similarity says there are many.
inline constexpr double kMinSurfaceSimilarity = 0.8;

// The calibrated rule's verdict on a pair the veto let through: similarity
// >= kMinCalibratedSimilarity, and either the score reaches the cut (a cut
// of 1 serves nothing by score) or, where `surface_rewrites` allows it, a
// surface rewrite with similarity >= kMinSurfaceSimilarity. Shared by the
// cache and semantic_eval, so that what is measured is what is served.
bool CalibratedRuleServes(double similarity, double score, double cut,
                          bool surface_rewrites, bool is_surface_rewrite);

// How candidates are judged in one lookup.
struct MatchRule {
  // Calibrated: serve when score >= cut. Null: by similarity alone.
  const MatchCalibration* calibration = nullptr;
  double cut = 0;
  // Calibrated: surface rewrites pass whatever their score
  // (MatchCalibration::SurfaceRewritesAt).
  bool surface_rewrites = false;
  // Without a calibration: the similarity a candidate needs.
  double min_similarity = 1;
  // Calibrated: where the search may stop, at least kMinCalibratedSimilarity
  // (SimilarityFloor of the lowest cut any entry can have, when higher).
  // Computed once per cache: it walks every tree.
  double similarity_floor = kMinCalibratedSimilarity;
};

struct MatchDecision {
  bool serve = false;
  // The calibrated probability, or the similarity when judged by it.
  double score = 0;
  // What the score had to reach (the rule's cut, or an entry's own bar).
  double cut = 0;
  // Non-empty when the conflict veto refused the pair.
  std::string veto;
  // The two differ only on the surface (IsSurfaceRewrite): the calibrated
  // rule serves them whatever the score, when no conflict vetoes them.
  bool surface_rewrite = false;
  // Calibrated: refused for a similarity below kMinCalibratedSimilarity.
  bool too_dissimilar = false;
  MatchFeatures features{};
  // One line: "veto: numbers differ: [10] vs [100]", "score 0.93 >= cut
  // 0.87", "score 0.41 < cut 0.87 (cover_min 0.33)". Without `with_words`,
  // a veto is named by its kind only ("veto: numbers differ"): for lines
  // that reach other clients, which must not read another user's words.
  std::string Explain(bool with_words = true) const;
};

class MatchDecider {
 public:
  MatchDecider(absl::string_view query, const MatchRule& rule,
               const Lexicon& lexicon);

  // `entry_cut`, when given, replaces the rule's cut for this candidate (an
  // entry's own bar, learned from feedback); `entry_reported_wrong` turns
  // the surface-rewrite pass off for it.
  MatchDecision Decide(absl::string_view candidate, double similarity,
                       std::optional<double> entry_cut = std::nullopt,
                       bool entry_reported_wrong = false) const;

  // Candidates below this similarity are not served (calibrated: below
  // kMinCalibratedSimilarity, or where even the best lexical evidence
  // cannot lift the score to the lowest cut): the search stops there.
  double similarity_floor() const { return similarity_floor_; }
  uint64_t number_signature() const { return number_signature_; }

 private:
  std::string query_text_;
  PromptAnalysis query_;
  MatchRule rule_;
  const Lexicon& lexicon_;
  double similarity_floor_;
  uint64_t number_signature_;
};

// The lowest similarity at which `calibration` can reach `cut` with the
// most favourable values of the other features.
double SimilarityFloor(const MatchCalibration& calibration, double cut);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_MATCH_DECISION_H_
