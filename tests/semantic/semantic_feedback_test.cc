// Learning from feedback: a reported false hit is never served again for
// its pair and raises the entry's own cut; confirmations lower it only
// within the error bound; and a replay of real traffic with feedback keeps
// the false-hit rate under the target.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "promptcache/builtin_embedder.h"
#include "promptcache/cached_client.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

class FeedbackTest : public ::testing::Test {
 protected:
  void Open(double target = 0.01) {
    client_.reset();
    cache_.reset();
    Options o;
    o.stats_flush_interval = absl::InfiniteDuration();
    o.embedder = std::make_shared<BuiltinEmbedder>();
    o.semantic.target_false_hit_rate = target;
    absl::StatusOr<std::unique_ptr<Cache>> cache = Cache::Open(dir_.path(), o);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
    client_ = std::make_unique<CachedClient>(
        *cache_, [this](const Request& r) -> absl::StatusOr<Response> {
          ++calls_;
          auto it = answers_.find(r.messages.back().content);
          return MakeAnswer(it != answers_.end()
                                ? it->second
                                : "answer to " + r.messages.back().content);
        });
  }

  TempDir dir_;
  int calls_ = 0;
  absl::flat_hash_map<std::string, std::string> answers_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<CachedClient> client_;
};

TEST_F(FeedbackTest, AReportedFalseHitRaisesTheEntrysOwnCut) {
  Open();
  ASSERT_TRUE(client_->Complete(MakeRequest("Explain recursion")).ok());
  absl::StatusOr<Response> hit =
      client_->Complete(MakeRequest("What is recursion?"));
  ASSERT_EQ(hit->cache_status, CacheStatus::kSemanticHit)
      << hit->semantic_decision;
  EXPECT_NE(hit->semantic_decision.find("score"), std::string::npos);
  const Key128 entry = *hit->entry_key;

  // Another wording of the same query scores as high: served before.
  const Request other = MakeRequest("what is recursion");
  absl::StatusOr<Cache::SemanticExplanation> before =
      cache_->ExplainSemantic(other);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_FALSE(before->candidates.empty());
  EXPECT_TRUE(before->candidates[0].served) << before->candidates[0].decision;
  const double global_cut = before->candidates[0].cut;

  ASSERT_TRUE(cache_->ReportFalseHit(*hit->request_key, entry).ok());
  Open();  // the entry's bar survives a restart
  absl::StatusOr<Cache::SemanticExplanation> after =
      cache_->ExplainSemantic(other);
  ASSERT_TRUE(after.ok());
  ASSERT_FALSE(after->candidates.empty());
  EXPECT_GT(after->candidates[0].cut, global_cut);
  EXPECT_FALSE(after->candidates[0].served) << after->candidates[0].decision;
  const int before_calls = calls_;
  EXPECT_EQ(client_->Complete(other)->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(calls_, before_calls + 1);
  // A confirmation of a pair reported wrong is refused.
  EXPECT_EQ(cache_->ConfirmSemanticHit(*hit->request_key, entry).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(FeedbackTest, ConfirmationsLowerTheCutOnlyWithinTheErrorBound) {
  // Target 10%: the rule of three needs 30 confirmations (3 / 0.1).
  Open(0.1);
  ASSERT_TRUE(client_->Complete(MakeRequest("Explain recursion")).ok());
  std::vector<std::pair<Key128, Key128>> served;
  for (int i = 1; i <= 30; ++i) {
    // Punctuation makes another request with the same words.
    absl::StatusOr<Response> hit = client_->Complete(
        MakeRequest("What is recursion" + std::string(i, '?')));
    ASSERT_EQ(hit->cache_status, CacheStatus::kSemanticHit) << i;
    served.push_back({*hit->request_key, *hit->entry_key});
  }
  const Request probe = MakeRequest("what is recursion!");
  const double global_cut = cache_->ExplainSemantic(probe)->candidates[0].cut;
  for (int i = 0; i < 29; ++i) {
    ASSERT_TRUE(
        cache_->ConfirmSemanticHit(served[i].first, served[i].second).ok());
    // Counted once per pair.
    ASSERT_TRUE(
        cache_->ConfirmSemanticHit(served[i].first, served[i].second).ok());
  }
  EXPECT_EQ(cache_->ExplainSemantic(probe)->candidates[0].cut, global_cut)
      << "29 confirmations do not bound the error below 10%";
  ASSERT_TRUE(
      cache_->ConfirmSemanticHit(served[29].first, served[29].second).ok());
  const double lowered = cache_->ExplainSemantic(probe)->candidates[0].cut;
  EXPECT_LT(lowered, global_cut);
  EXPECT_GE(lowered, global_cut - SemanticOptions{}.feedback_max_lowering);
  EXPECT_TRUE(absl::IsNotFound(
      cache_->ConfirmSemanticHit(served[0].second, served[0].first)));
}

// CLINC150 replayed as traffic: a sample of the training queries is stored
// (each answered with its intent), the test queries (with out-of-scope
// ones) are asked, and every wrong semantic hit is reported as a user
// would. The false-hit rate stays under the 1% target, no reported pair is
// served again, and a second pass makes fewer wrong hits than the first.
TEST_F(FeedbackTest, ReplayWithFeedbackStaysUnderTheTarget) {
  const std::filesystem::path data = std::filesystem::path(
      PROMPTCACHE_SOURCE_DIR "/../shared/data/intents/clinc150/data_full.json");
  std::ifstream in(data);
  if (!in) GTEST_SKIP() << "no " << data;
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str());
  Open();
  absl::flat_hash_map<std::string, std::string> intent_of;
  int stored = 0;
  for (size_t i = 0; i < j["train"].size(); i += 5) {
    const std::string q = j["train"][i][0], intent = j["train"][i][1];
    answers_[q] = "intent:" + intent;
    ASSERT_TRUE(client_->Complete(MakeRequest(q)).ok());
    ++stored;
  }
  std::vector<std::pair<std::string, std::string>> queries;
  for (const auto& row : j["test"]) queries.push_back({row[0], row[1]});
  for (const auto& row : j["oos_test"]) queries.push_back({row[0], "oos"});
  absl::flat_hash_map<std::string, std::optional<Key128>>
      reported;  // query -> entry
  int wrong_first = 0, wrong_second = 0, right = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [q, intent] : queries) {
      // A distinct answer per query, so that a miss stores nothing shared.
      answers_[q] = "intent:" + intent;
      absl::StatusOr<Response> r = client_->Complete(MakeRequest(q));
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->cache_status != CacheStatus::kSemanticHit) continue;
      if (r->text == "intent:" + intent && intent != "oos") {
        ++right;
        continue;
      }
      (pass == 0 ? wrong_first : wrong_second) += 1;
      auto it = reported.find(q);
      EXPECT_TRUE(it == reported.end() || it->second != r->entry_key)
          << "a reported pair was served again: " << q;
      reported[q] = r->entry_key;
      ASSERT_TRUE(cache_->ReportFalseHit(*r->request_key, *r->entry_key).ok());
    }
  }
  const double n = static_cast<double>(queries.size());
  EXPECT_GT(stored, 2000);
  EXPECT_GT(right, 0);
  EXPECT_LE(wrong_first / n, 0.01) << wrong_first << " wrong of " << n;
  EXPECT_LE(wrong_second, wrong_first);
  EXPECT_LE((wrong_first + wrong_second) / (2 * n), 0.01);
  const LedgerRow total = cache_->Report()->total;
  EXPECT_EQ(total.false_hits, wrong_first + wrong_second);
}

}  // namespace
}  // namespace promptcache
