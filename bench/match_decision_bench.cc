// Cost of the semantic tier's decision, next to the embedding it follows:
// the built-in embedder on a lookup's text, and per candidate the analysis
// of its text, the conflict veto, the match features and the calibrated
// score (bench/README.md, "Match decision: cost"). Targets: embedding
// <= 20 us, decision <= 10 us per candidate.
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "promptcache/builtin_embedder.h"
#include "promptcache/match_calibration.h"
#include "semantic/lexicon.h"
#include "semantic/match_decision.h"

namespace {

using promptcache::internal::Lexicon;

// Short chat questions and a long one (a pasted paragraph).
const std::vector<std::pair<std::string, std::string>>& Pairs() {
  static const auto* const kPairs =
      new std::vector<std::pair<std::string, std::string>>{
          {"How do I reset my password?", "how can i reset my password"},
          {"What is the difference between a list and a tuple in Python?",
           "difference between list and tuple python"},
          {"convert 20 GBP to JPY", "convert 20 JPY to GBP"},
          {"Context: Webhooks are signed with HMAC-SHA256 using your signing "
           "secret; endpoints must answer within 10 seconds or the delivery "
           "is retried with backoff for up to three days, and every delivery "
           "is listed in the audit log with its status. Question: how do i "
           "verify webhook signatures",
           "Context: Webhooks are signed with HMAC-SHA256 using your signing "
           "secret; endpoints must answer within 10 seconds or the delivery "
           "is retried with backoff for up to three days, and every delivery "
           "is listed in the audit log with its status. Question: What "
           "timeout do webhook endpoints have?"},
      };
  return *kPairs;
}

void BM_BuiltinEmbed(benchmark::State& state) {
  promptcache::BuiltinEmbedder embedder;
  const std::string& text = Pairs()[state.range(0)].first;
  std::vector<float> v;
  for (auto _ : state) {
    benchmark::DoNotOptimize(embedder.Embed({text}, &v));
  }
}
BENCHMARK(BM_BuiltinEmbed)->DenseRange(0, 3);

// One candidate judged by the shipped calibration (the query side is
// analyzed once per lookup, outside the loop, as the cache does).
void BM_DecidePerCandidate(benchmark::State& state) {
  promptcache::BuiltinEmbedder embedder;
  static const auto* const kCalibration = new promptcache::MatchCalibration(
      *promptcache::MatchCalibration::Shipped(embedder.name()));
  promptcache::internal::MatchRule rule;
  rule.calibration = kCalibration;
  rule.cut = *kCalibration->CutFor(0.01);
  rule.similarity_floor = 0.5;
  const auto& [query, candidate] = Pairs()[state.range(0)];
  Lexicon::Default();  // parsed once per process, not per lookup
  const promptcache::internal::MatchDecider decider(query, rule,
                                                    Lexicon::Default());
  for (auto _ : state) {
    benchmark::DoNotOptimize(decider.Decide(candidate, 0.85));
  }
}
BENCHMARK(BM_DecidePerCandidate)->DenseRange(0, 3);

// The query side of a lookup: its analysis (once per lookup).
void BM_AnalyzeQuery(benchmark::State& state) {
  promptcache::internal::MatchRule rule;
  const std::string& query = Pairs()[state.range(0)].first;
  Lexicon::Default();
  for (auto _ : state) {
    promptcache::internal::MatchDecider decider(query, rule,
                                                Lexicon::Default());
    benchmark::DoNotOptimize(decider.number_signature());
  }
}
BENCHMARK(BM_AnalyzeQuery)->DenseRange(0, 3);

}  // namespace

BENCHMARK_MAIN();
