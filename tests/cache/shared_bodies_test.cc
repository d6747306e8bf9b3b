// Identical long answers of many prompts are stored once (content-addressed
// bodies with reference counts), and every path that reads or deletes
// entries handles them.
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

const std::string kLongAnswer =
    "Unplug the router, wait thirty seconds, plug it back in. " +
    std::string(2000, '.');

class SharedBodiesTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    client_.reset();
    cache_.reset();
    Options o;
    o.hot_cache_bytes = 0;  // Every hit reads the store.
    o.stats_flush_interval = absl::InfiniteDuration();
    cache_ = *Cache::Open(dir_.path(), o);
    client_ = std::make_unique<CachedClient>(
        *cache_, [this](const Request&) -> absl::StatusOr<Response> {
          return MakeAnswer(answer_);
        });
  }
  Response Ask(const std::string& q, CallOptions call = {}) {
    absl::StatusOr<Response> r = client_->Complete(MakeRequest(q), call);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Response();
  }
  TempDir dir_;
  std::string answer_ = kLongAnswer;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<CachedClient> client_;
};

TEST_F(SharedBodiesTest, IdenticalAnswersAreStoredOnce) {
  for (int i = 0; i < 50; ++i) Ask(absl::StrCat("router question ", i));
  CacheStats stats = *cache_->Stats();
  EXPECT_EQ(stats.entries, 50);
  EXPECT_EQ(stats.shared_bodies, 1);
  EXPECT_EQ(stats.shared_body_refs, 50);
  EXPECT_EQ(stats.shared_body_bytes, static_cast<int64_t>(kLongAnswer.size()));
  // 50 entries hold a reference each, not the text.
  EXPECT_LT(stats.entry_bytes,
            50 * static_cast<int64_t>(kLongAnswer.size()) / 4);
  // Hits, Inspect and Export give the full text, also after reopening.
  Open();
  for (int i = 0; i < 50; i += 7) {
    Response hit = Ask(absl::StrCat("router question ", i));
    EXPECT_EQ(hit.cache_status, CacheStatus::kExactHit);
    EXPECT_EQ(hit.text, kLongAnswer);
  }
  EntryInfo info = *cache_->Inspect(*Ask("router question 3").entry_key);
  EXPECT_EQ(info.answers.at(0).text, kLongAnswer);
  std::ostringstream out;
  ASSERT_EQ(*cache_->Export(out), 50);
  EXPECT_NE(out.str().find(kLongAnswer.substr(0, 60)), std::string::npos);
}

TEST_F(SharedBodiesTest, TheLastReferenceDeletesTheBody) {
  for (int i = 0; i < 10; ++i) Ask(absl::StrCat("question ", i));
  PurgeFilter only_ns;
  only_ns.ns = "nobody";
  EXPECT_EQ(*cache_->Purge(only_ns), 0);
  EXPECT_EQ(cache_->Stats()->shared_body_refs, 10);
  // A refresh with another answer releases the old body's reference.
  answer_ = kLongAnswer + " (updated)";
  CallOptions refresh;
  refresh.force_refresh = true;
  Ask("question 0", refresh);
  CacheStats stats = *cache_->Stats();
  EXPECT_EQ(stats.shared_bodies, 2);
  EXPECT_EQ(stats.shared_body_refs, 10);
  EXPECT_EQ(Ask("question 0").text, answer_);
  EXPECT_EQ(Ask("question 1").text, kLongAnswer);
  EXPECT_EQ(*cache_->Purge(PurgeFilter{}), 10);
  stats = *cache_->Stats();
  EXPECT_EQ(stats.shared_bodies, 0);
  EXPECT_EQ(stats.shared_body_refs, 0);
}

TEST_F(SharedBodiesTest, ShortAnswersStayInline) {
  answer_ = "Yes.";
  Ask("short one");
  Ask("short two");
  EXPECT_EQ(cache_->Stats()->shared_bodies, 0);
  EXPECT_EQ(Ask("short one").text, "Yes.");
}

TEST_F(SharedBodiesTest, ImportOverExistingEntriesKeepsCountsRight) {
  for (int i = 0; i < 5; ++i) Ask(absl::StrCat("question ", i));
  std::stringstream dump;
  ASSERT_EQ(*cache_->Export(dump), 5);
  // Importing the same entries replaces them (inline) and releases the
  // shared body they referred to.
  ASSERT_EQ(*cache_->Import(dump), 5);
  const CacheStats stats = *cache_->Stats();
  EXPECT_EQ(stats.entries, 5);
  EXPECT_EQ(stats.shared_bodies, 0);
  EXPECT_EQ(Ask("question 2").text, kLongAnswer);
}

TEST_F(SharedBodiesTest, AnImportHoldingAKeyTwiceKeepsOtherEntriesBodies) {
  Ask("first");
  Ask("second");  // Shares the body with "first".
  std::stringstream dump;
  ASSERT_EQ(*cache_->Export(dump), 2);
  std::string line;
  std::getline(dump, line);
  std::stringstream twice(line + "\n" + line + "\n");
  ASSERT_EQ(*cache_->Import(twice), 2);
  // Neither entry lost its text.
  EXPECT_EQ(Ask("first").text, kLongAnswer);
  EXPECT_EQ(Ask("second").text, kLongAnswer);
  EXPECT_EQ(Ask("second").cache_status, CacheStatus::kExactHit);
}

TEST(SharedBodiesBudgetTest, EvictionReleasesBodies) {
  TempDir dir;
  Options o;
  o.max_bytes = 128 << 10;
  o.stats_flush_interval = absl::InfiniteDuration();
  auto cache = *Cache::Open(dir.path(), o);
  // Ten distinct long answers, each shared by many prompts.
  int call = 0;
  CachedClient client(*cache, [&](const Request&) -> absl::StatusOr<Response> {
    return MakeAnswer(absl::StrCat("answer ", call++ % 10, " ") +
                      std::string(4000, '-'));
  });
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(client.Complete(MakeRequest(absl::StrCat("q ", i))).ok());
  }
  const CacheStats stats = *cache->Stats();
  EXPECT_GT(stats.evicted_entries, 0);
  EXPECT_LE(stats.shared_bodies, 10);
  EXPECT_EQ(stats.shared_body_refs, stats.entries);
}

}  // namespace
}  // namespace promptcache
