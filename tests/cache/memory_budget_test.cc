// One memory budget (Options::block_cache_bytes): RocksDB's blocks, the
// memtables and the hot answers all charge the same RocksDB block cache.
#include <string>

#include "gtest/gtest.h"
#include "promptcache/cache.h"
#include "promptcache/cache_tiers.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

constexpr size_t kMiB = size_t{1} << 20;

Options BudgetOptions(size_t block_cache, size_t hot) {
  Options o;
  o.stats_flush_interval = absl::InfiniteDuration();
  o.block_cache_bytes = block_cache;
  o.hot_cache_bytes = hot;
  return o;
}

void StoreN(Cache& cache, int from, int to, size_t answer_bytes) {
  for (int i = from; i < to; ++i) {
    const Request q = MakeRequest("question number " + std::to_string(i));
    absl::StatusOr<CanonicalizedRequest> c = Canonicalize(q);
    ASSERT_TRUE(c.ok()) << c.status();
    Response a =
        MakeAnswer(std::string(answer_bytes, 'a' + i % 26) + std::to_string(i));
    ASSERT_TRUE(CacheTiers(cache).StoreMiss(q, *c, std::nullopt, &a).ok());
  }
}

TEST(MemoryBudgetTest, HotAnswersAreChargedToTheBlockCache) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<Cache>> cache =
      Cache::Open(dir.path(), BudgetOptions(16 * kMiB, 8 * kMiB));
  ASSERT_TRUE(cache.ok()) << cache.status();
  StoreN(**cache, 0, 3000, 1000);  // ~3.6 MB of hot answers
  Cache::MemoryStats stats = (*cache)->GetMemoryStats();
  EXPECT_EQ(stats.budget_bytes, int64_t{16 * kMiB});
  EXPECT_EQ(stats.hot_answers, 3000) << "stored answers are held hot";
  EXPECT_GT(stats.hot_answer_bytes, int64_t{3000 * 1000});
  // Besides its blocks, the block cache holds the memtables' charge.
  EXPECT_GE(stats.used_bytes, stats.hot_answer_bytes + stats.memtable_bytes);
  EXPECT_LE(stats.used_bytes, stats.budget_bytes);

  // Ten times what the hot part may hold: it stays within its share, and
  // everything within the budget.
  StoreN(**cache, 3000, 30000, 1000);
  stats = (*cache)->GetMemoryStats();
  EXPECT_LE(stats.hot_answer_bytes, int64_t{8 * kMiB});
  EXPECT_GT(stats.hot_answer_bytes, int64_t{6 * kMiB});
  EXPECT_LT(stats.hot_answers, 30000);
  EXPECT_LE(stats.used_bytes, stats.budget_bytes);
  EXPECT_EQ((*cache)->Stats()->entries, 30000)
      << "held in memory or not, all are stored";
}

TEST(MemoryBudgetTest, HotAnswerEqualsTheStoredOne) {
  TempDir dir;
  const Request q = MakeRequest("What is the boiling point of water?");
  Response answer = MakeAnswer("100 degrees Celsius at sea level.");
  answer.tool_calls_json = R"([{"id":"c1","type":"function"}])";
  answer.finish_reason = "tool_calls";
  answer.usage = {123, 45, 6, 7, false};
  answer.upstream_latency = absl::Microseconds(987654);
  const Key128 key = ComputeKeys(q)->exact;
  Response from_memory;
  {
    auto cache = Cache::Open(dir.path(), BudgetOptions(128 * kMiB, 64 * kMiB));
    ASSERT_TRUE(cache.ok()) << cache.status();
    absl::StatusOr<CanonicalizedRequest> c = Canonicalize(q);
    ASSERT_TRUE(c.ok());
    Response stored = answer;
    ASSERT_TRUE(
        CacheTiers(**cache).StoreMiss(q, *c, std::nullopt, &stored).ok());
    ASSERT_EQ((*cache)->GetMemoryStats().hot_answers, 1);
    absl::StatusOr<Response> hit = CacheTiers(**cache).GetExact(key);
    ASSERT_TRUE(hit.ok()) << hit.status();
    from_memory = *hit;
  }
  // Reopened without a hot cache, the answer comes from RocksDB.
  auto cache = Cache::Open(dir.path(), BudgetOptions(128 * kMiB, 0));
  ASSERT_TRUE(cache.ok()) << cache.status();
  absl::StatusOr<Response> from_store = CacheTiers(**cache).GetExact(key);
  ASSERT_TRUE(from_store.ok()) << from_store.status();
  for (const Response* r : {&from_memory, &*from_store}) {
    EXPECT_EQ(r->text, answer.text);
    EXPECT_EQ(r->tool_calls_json, answer.tool_calls_json);
    EXPECT_EQ(r->finish_reason, answer.finish_reason);
    EXPECT_EQ(r->usage.input_tokens, 123);
    EXPECT_EQ(r->usage.output_tokens, 45);
    EXPECT_EQ(r->usage.cached_input_tokens, 6);
    EXPECT_EQ(r->usage.cache_write_input_tokens, 7);
    EXPECT_FALSE(r->usage.estimated);
    EXPECT_EQ(r->upstream_latency, answer.upstream_latency);
    EXPECT_EQ(r->entry_key, key);
  }
}

TEST(MemoryBudgetTest, ARefreshReplacesTheHotAnswer) {
  TempDir dir;
  auto cache = Cache::Open(dir.path(), BudgetOptions(128 * kMiB, 64 * kMiB));
  ASSERT_TRUE(cache.ok()) << cache.status();
  const Request q = MakeRequest("Latest release?");
  absl::StatusOr<CanonicalizedRequest> c = Canonicalize(q);
  ASSERT_TRUE(c.ok());
  Response first = MakeAnswer("v1");
  ASSERT_TRUE(CacheTiers(**cache).StoreMiss(q, *c, std::nullopt, &first).ok());
  ASSERT_EQ(CacheTiers(**cache).GetExact(c->keys.exact)->text, "v1");
  Response second = MakeAnswer("v2");
  ASSERT_TRUE(CacheTiers(**cache)
                  .StoreMiss(q, *c, std::nullopt, &second, /*replace=*/true)
                  .ok());
  EXPECT_EQ(CacheTiers(**cache).GetExact(c->keys.exact)->text, "v2");
  EXPECT_EQ((*cache)->GetMemoryStats().hot_answers, 1);
}

TEST(MemoryBudgetTest, HotCacheMustFitTheBudget) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<Cache>> cache =
      Cache::Open(dir.path(), BudgetOptions(64 * kMiB, 64 * kMiB));
  ASSERT_TRUE(absl::IsInvalidArgument(cache.status())) << cache.status();
  EXPECT_NE(cache.status().message().find("hot_cache_bytes"),
            std::string::npos);
  EXPECT_NE(cache.status().message().find("block_cache_bytes"),
            std::string::npos);

  // BlockCacheBytesFor gives the smallest budget that is accepted.
  for (size_t hot : {size_t{1}, 5 * kMiB, 64 * kMiB, 1000 * kMiB}) {
    const size_t fits = BlockCacheBytesFor(hot);
    EXPECT_TRUE(Cache::Open(dir.Sub("a" + std::to_string(hot)),
                            BudgetOptions(fits, hot))
                    .ok())
        << hot;
    EXPECT_TRUE(
        absl::IsInvalidArgument(Cache::Open(dir.Sub("b" + std::to_string(hot)),
                                            BudgetOptions(fits - kMiB, hot))
                                    .status()))
        << hot;
  }
  // The defaults fit.
  EXPECT_TRUE(Cache::Open(dir.Sub("defaults"), Options()).ok());
}

}  // namespace
}  // namespace promptcache

namespace promptcache {
namespace {

// Polls until the hot answers are no longer being filled after open.
bool WaitForWarmUp(Cache& cache) {
  for (int i = 0; i < 3000 && cache.GetMemoryStats().warming; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  return !cache.GetMemoryStats().warming;
}

TEST(MemoryBudgetTest, AReopenedCacheWarmsItsHotAnswers) {
  TempDir dir;
  {
    auto cache = Cache::Open(dir.path(), BudgetOptions(128 * kMiB, 64 * kMiB));
    ASSERT_TRUE(cache.ok()) << cache.status();
    StoreN(**cache, 0, 2000, 700);  // ~half with bodies of >= 512 B shared
  }
  Options cold = BudgetOptions(128 * kMiB, 64 * kMiB);
  cold.warm_hot_cache_on_open = false;
  {
    auto cache = Cache::Open(dir.path(), cold);
    ASSERT_TRUE(cache.ok()) << cache.status();
    EXPECT_FALSE((*cache)->GetMemoryStats().warming);
    EXPECT_EQ((*cache)->GetMemoryStats().hot_answers, 0);
  }
  auto cache = Cache::Open(dir.path(), BudgetOptions(128 * kMiB, 64 * kMiB));
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_TRUE(WaitForWarmUp(**cache));
  EXPECT_EQ((*cache)->GetMemoryStats().hot_answers, 2000);
  for (int i : {0, 1, 999, 1999}) {
    const Request q = MakeRequest("question number " + std::to_string(i));
    absl::StatusOr<Response> hit =
        CacheTiers(**cache).GetExact(ComputeKeys(q)->exact);
    ASSERT_TRUE(hit.ok()) << hit.status();
    EXPECT_EQ(hit->text, std::string(700, 'a' + i % 26) + std::to_string(i));
  }
}

TEST(MemoryBudgetTest, WarmUpStopsBeforeEvictingAndNeverUndoesAWrite) {
  TempDir dir;
  {
    auto cache = Cache::Open(dir.path(), BudgetOptions(16 * kMiB, 1 * kMiB));
    ASSERT_TRUE(cache.ok()) << cache.status();
    StoreN(**cache, 0, 5000, 1000);  // ~5 MB: five times the hot part
  }
  auto cache = Cache::Open(dir.path(), BudgetOptions(16 * kMiB, 1 * kMiB));
  ASSERT_TRUE(cache.ok()) << cache.status();
  // Rewrites while the warm-up runs: whatever the interleaving, the new
  // answers are what is served afterwards.
  for (int i = 0; i < 5000; i += 50) {
    const Request q = MakeRequest("question number " + std::to_string(i));
    absl::StatusOr<CanonicalizedRequest> c = Canonicalize(q);
    ASSERT_TRUE(c.ok());
    Response a = MakeAnswer("rewritten " + std::to_string(i));
    ASSERT_TRUE(CacheTiers(**cache).StoreMiss(q, *c, std::nullopt, &a).ok());
  }
  ASSERT_TRUE(WaitForWarmUp(**cache));
  const Cache::MemoryStats stats = (*cache)->GetMemoryStats();
  EXPECT_LE(stats.hot_answer_bytes, int64_t{kMiB});
  EXPECT_GT(stats.hot_answer_bytes, int64_t{kMiB / 2});
  for (int i = 0; i < 5000; i += 50) {
    const Request q = MakeRequest("question number " + std::to_string(i));
    absl::StatusOr<Response> hit =
        CacheTiers(**cache).GetExact(ComputeKeys(q)->exact);
    ASSERT_TRUE(hit.ok()) << hit.status();
    EXPECT_EQ(hit->text, "rewritten " + std::to_string(i));
  }
}

}  // namespace
}  // namespace promptcache
