// The byte budget: eviction by GDSF (dollars), LRU and LFU, hard TTLs,
// admission, reopening, and that an evicted entry is gone from every tier.
#include "cache/eviction.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "promptcache/builtin_embedder.h"
#include "promptcache/cache_tiers.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

constexpr size_t kBudget = 256 << 10;

// The backend that prices `model`.
std::string BackendOf(const std::string& model) {
  return model.rfind("claude", 0) == 0 ? "anthropic" : "openai";
}

Options BudgetOptions(EvictionPolicy policy = EvictionPolicy::kGdsf) {
  Options o;
  o.max_bytes = kBudget;
  o.eviction = policy;
  o.stats_flush_interval = absl::InfiniteDuration();
  return o;
}

// Stores `question` with an answer of about `answer_bytes` through a client.
Response Store(CachedClient& client, const std::string& question,
               const std::string& model, size_t answer_bytes,
               const std::string& ns = "tenant-a") {
  // Distinct answers: identical ones would share one stored body.
  ModelClient upstream = [&](const Request&) -> absl::StatusOr<Response> {
    Response r = MakeAnswer(question + std::string(answer_bytes, 'x'));
    r.usage.input_tokens = 200;
    r.usage.output_tokens = static_cast<int64_t>(answer_bytes / 4);
    return r;
  };
  absl::StatusOr<Response> r = client.Complete(
      MakeRequest(question, ns, model, BackendOf(model)), {}, upstream);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Response();
}

bool IsCached(Cache& cache, const std::string& question,
              const std::string& model) {
  absl::StatusOr<CanonicalizedRequest> c =
      Canonicalize(MakeRequest(question, "tenant-a", model, BackendOf(model)));
  return CacheTiers(cache).GetExact(c->keys.exact).ok();
}

TEST(EvictionTest, StaysWithinTheBudgetAndEvictedEntriesAreGone) {
  TempDir dir;
  auto cache = *Cache::Open(dir.path(), BudgetOptions());
  CachedClient client(*cache, nullptr);
  for (int i = 0; i < 600; ++i) {
    Store(client, absl::StrCat("question number ", i), "gpt-4o-mini", 1000);
    ASSERT_LE(cache->Stats()->budgeted_bytes, static_cast<int64_t>(kBudget));
  }
  const CacheStats stats = *cache->Stats();
  EXPECT_GT(stats.evicted_entries, 0);
  EXPECT_LT(stats.entries, 600);
  EXPECT_EQ(stats.entries + stats.evicted_entries, 600);
  // Evicted entries answer NotFound; kept ones are served.
  int kept = 0;
  for (int i = 0; i < 600; ++i) {
    kept +=
        IsCached(*cache, absl::StrCat("question number ", i), "gpt-4o-mini");
  }
  EXPECT_EQ(kept, stats.entries);
}

TEST(EvictionTest, GdsfKeepsWhatSavesTheMostDollarsPerByte) {
  TempDir dir;
  auto cache = *Cache::Open(dir.path(), BudgetOptions(EvictionPolicy::kGdsf));
  CachedClient client(*cache, nullptr);
  // Interleaved: answers of an expensive model and of a cheap one, same size.
  for (int i = 0; i < 300; ++i) {
    Store(client, absl::StrCat("opus question ", i), "claude-opus-4-1", 1000);
    Store(client, absl::StrCat("mini question ", i), "gpt-4o-mini", 1000);
  }
  int opus = 0, mini = 0;
  for (int i = 0; i < 300; ++i) {
    opus +=
        IsCached(*cache, absl::StrCat("opus question ", i), "claude-opus-4-1");
    mini += IsCached(*cache, absl::StrCat("mini question ", i), "gpt-4o-mini");
  }
  EXPECT_GT(cache->Stats()->evicted_entries, 0);
  EXPECT_GT(opus, 3 * mini) << "opus kept " << opus << ", mini kept " << mini;
}

TEST(EvictionTest, FrequentlyHitEntriesSurviveUnderEveryPolicy) {
  for (EvictionPolicy policy :
       {EvictionPolicy::kGdsf, EvictionPolicy::kLru, EvictionPolicy::kLfu}) {
    TempDir dir;
    auto cache = *Cache::Open(dir.path(), BudgetOptions(policy));
    CachedClient client(*cache, nullptr);
    for (int i = 0; i < 20; ++i) {
      Store(client, absl::StrCat("popular ", i), "gpt-4o-mini", 1000);
    }
    for (int round = 0; round < 40; ++round) {
      // The popular ones are asked again and again between new questions.
      for (int i = 0; i < 20; ++i) {
        Store(client, absl::StrCat("popular ", i), "gpt-4o-mini", 1000);
      }
      cache->FlushStats().IgnoreError();
      for (int k = 0; k < 15; ++k) {
        Store(client, absl::StrCat("one-off ", round, "-", k), "gpt-4o-mini",
              1000);
      }
    }
    int popular = 0;
    for (int i = 0; i < 20; ++i) {
      popular += IsCached(*cache, absl::StrCat("popular ", i), "gpt-4o-mini");
    }
    EXPECT_GT(cache->Stats()->evicted_entries, 100);
    EXPECT_GE(popular, 18) << "policy " << static_cast<int>(policy);
  }
}

TEST(EvictionTest, ExpiredEntriesGoFirstAndAreNeverServed) {
  TempDir dir;
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  Options o = BudgetOptions(EvictionPolicy::kGdsf);
  o.clock = [&now] { return now; };
  auto cache = *Cache::Open(dir.path(), o);
  CachedClient client(*cache, nullptr);
  CallOptions short_lived;
  short_lived.ttl = absl::Minutes(1);
  ModelClient upstream = [](const Request& r) -> absl::StatusOr<Response> {
    return MakeAnswer(r.messages.back().content + std::string(1000, 'y'));
  };
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(client
                    .Complete(MakeRequest(absl::StrCat("short ", i), "tenant-a",
                                          "claude-opus-4-1", "anthropic"),
                              short_lived, upstream)
                    .ok());
  }
  now += absl::Minutes(2);
  EXPECT_FALSE(IsCached(*cache, "short 0", "claude-opus-4-1"));
  for (int i = 0; i < 400; ++i) {
    Store(client, absl::StrCat("cheap ", i), "gpt-4o-mini", 1000);
  }
  // The expired (expensive!) entries were evicted before live cheap ones.
  int cheap = 0;
  for (int i = 350; i < 400; ++i) {
    cheap += IsCached(*cache, absl::StrCat("cheap ", i), "gpt-4o-mini");
  }
  EXPECT_EQ(cheap, 50);
  EXPECT_EQ(cache->Stats()->expired_entries, 0);
}

TEST(EvictionTest, TheBudgetHoldsAcrossReopen) {
  TempDir dir;
  int64_t bytes = 0;
  {
    Options unbounded = BudgetOptions();
    unbounded.max_bytes = 0;
    auto cache = *Cache::Open(dir.path(), unbounded);
    CachedClient client(*cache, nullptr);
    for (int i = 0; i < 500; ++i) {
      Store(client, absl::StrCat("question ", i), "gpt-4o-mini", 1000);
    }
    EXPECT_EQ(cache->Stats()->evicted_entries, 0);
  }
  {
    // Opening with a budget evicts down to it at once.
    auto cache = *Cache::Open(dir.path(), BudgetOptions());
    const CacheStats stats = *cache->Stats();
    EXPECT_LE(stats.budgeted_bytes, static_cast<int64_t>(kBudget));
    EXPECT_GT(stats.evicted_entries, 0);
    bytes = stats.budgeted_bytes;
  }
  {
    auto cache = *Cache::Open(dir.path(), BudgetOptions());
    EXPECT_EQ(cache->Stats()->budgeted_bytes, bytes);
    EXPECT_EQ(cache->Stats()->evicted_entries, 0);
  }
}

TEST(EvictionTest, EvictionRemovesVectorsAndIndexSlots) {
  TempDir dir;
  Options o = BudgetOptions();
  o.embedder = std::make_shared<BuiltinEmbedder>();
  o.semantic.threshold = 0.8;  // plumbing, not the match decision
  auto cache = *Cache::Open(dir.path(), o);
  CachedClient client(*cache, nullptr);
  Store(client, "How do I reset my router password?", "gpt-4o-mini", 1000);
  ModelClient fresh = [](const Request&) -> absl::StatusOr<Response> {
    return MakeAnswer("fresh");
  };
  absl::StatusOr<Response> near = client.Complete(
      MakeRequest("how can I reset my router password"), {}, fresh);
  ASSERT_TRUE(near.ok());
  EXPECT_EQ(near->cache_status, CacheStatus::kSemanticHit);
  for (int i = 0; i < 400; ++i) {
    Store(client, absl::StrCat("filler question about topic ", i),
          "claude-opus-4-1", 1000);
  }
  ASSERT_FALSE(
      IsCached(*cache, "How do I reset my router password?", "gpt-4o-mini"));
  // `vectors` counts indexed vectors; stores queue theirs (AddLater).
  cache->WaitForSemanticIndex();
  EXPECT_EQ(cache->GetSemanticStats().vectors, cache->Stats()->entries);
  absl::StatusOr<Response> after = client.Complete(
      MakeRequest("how could I reset my router password"), {}, fresh);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->cache_status, CacheStatus::kMiss);
}

TEST(EvictionTest, AdmissionSkipsAnswersWorthLessThanTheirBytes) {
  TempDir dir;
  Options o;
  o.stats_flush_interval = absl::InfiniteDuration();
  // $0.001 per KiB: a 20 KB answer of a cheap model saves less ($0.003).
  o.min_dollars_saved_per_kib = 0.001;
  auto cache = *Cache::Open(dir.path(), o);
  CachedClient client(*cache, nullptr);
  Response cheap_huge = Store(client, "cheap and long", "gpt-4o-mini", 20000);
  EXPECT_FALSE(cheap_huge.stored);
  EXPECT_FALSE(IsCached(*cache, "cheap and long", "gpt-4o-mini"));
  Response dear_short = Store(client, "dear and short", "claude-opus-4-1", 500);
  EXPECT_TRUE(dear_short.stored);
  EXPECT_EQ(cache->Stats()->not_admitted, 1);
  // The refused answer still counts as a (paid) miss in the ledger.
  const SavingsReport report = *cache->Report();
  EXPECT_EQ(report.total.misses, 2);
  EXPECT_EQ(report.total.stored, 1);
}

TEST(EvictionTest, AForcedRefreshReplacesTheAnswerWhateverAdmissionSays) {
  TempDir dir;
  Options o;
  o.stats_flush_interval = absl::InfiniteDuration();
  o.min_dollars_saved_per_kib = 0.001;
  auto cache = *Cache::Open(dir.path(), o);
  std::string answer = "short and dear";
  CachedClient client(*cache, [&](const Request&) -> absl::StatusOr<Response> {
    Response r = MakeAnswer(answer);
    r.usage.output_tokens = 2000;
    return r;
  });
  const Request q =
      MakeRequest("which answer?", "tenant-a", "claude-opus-4-1", "anthropic");
  ASSERT_TRUE(client.Complete(q)->stored);
  // The corrected answer would not be admitted on its own (cheap per KiB).
  answer = std::string(200000, 'z');
  CallOptions refresh;
  refresh.force_refresh = true;
  ASSERT_TRUE(client.Complete(q, refresh).ok());
  // The old answer is never served again.
  EXPECT_EQ(client.Complete(q)->text, answer);
}

TEST(EvictionTest, ReadersRunWhileEvictionDeletes) {
  TempDir dir;
  auto cache = *Cache::Open(dir.path(), BudgetOptions());
  CachedClient client(*cache, nullptr);
  for (int i = 0; i < 100; ++i) {
    Store(client, absl::StrCat("q", i), "gpt-4o-mini", 1000);
  }
  std::atomic<bool> stop{false};
  std::atomic<int64_t> lookups{0};
  std::thread reader([&] {
    while (!stop) {
      for (int i = 0; i < 100; ++i) {
        IsCached(*cache, absl::StrCat("q", i), "gpt-4o-mini");
        lookups.fetch_add(1);
      }
    }
  });
  for (int i = 100; i < 1500; ++i) {
    Store(client, absl::StrCat("q", i), "gpt-4o-mini", 1000);
  }
  stop = true;
  reader.join();
  EXPECT_GT(lookups.load(), 0);
  EXPECT_LE(cache->Stats()->budgeted_bytes, static_cast<int64_t>(kBudget));
}

TEST(EvictionTest, BadBudgetOptionsAreClearErrors) {
  TempDir dir;
  Options o;
  o.max_bytes = 1000;
  EXPECT_EQ(Cache::Open(dir.path(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.max_bytes = kBudget;
  o.eviction_low_watermark = 1.5;
  EXPECT_EQ(Cache::Open(dir.path(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.eviction_low_watermark = 0.9;
  o.min_dollars_saved_per_kib = -1;
  EXPECT_EQ(Cache::Open(dir.path(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EvictionTrackerTest, SampledVictimsAreAmongTheLowestPriorities) {
  internal::EvictionTracker tracker(EvictionPolicy::kGdsf);
  // 1000 entries of equal size, cost i: evicting 100 should take cheap ones.
  for (int i = 1; i <= 1000; ++i) {
    tracker.Upsert(Key128{0, static_cast<uint64_t>(i)}, 1000, i * 1000, 0, 1);
  }
  std::vector<internal::EvictionTracker::Slot> victims =
      tracker.TakeVictims(900 * 1000, 2);
  ASSERT_EQ(victims.size(), 100u);
  double mean = 0;
  for (const auto& v : victims) mean += static_cast<double>(v.key.lo);
  mean /= static_cast<double>(victims.size());
  EXPECT_LT(mean, 200) << "victims should be the cheap entries";
  EXPECT_EQ(tracker.total_bytes(), 900 * 1000);
  // A victim whose deletion failed is counted again.
  tracker.Restore(victims[0]);
  EXPECT_EQ(tracker.total_bytes(), 901 * 1000);
  EXPECT_TRUE(tracker.Contains(victims[0].key));
}

}  // namespace
}  // namespace promptcache

namespace promptcache {
namespace {

// More hit entries than one flush chunk: every count lands, in the ledger
// and on the entries, and the write lock is given up between chunks.
TEST(StatsFlushTest, ABacklogLargerThanOneChunkIsWrittenWhole) {
  TempDir dir;
  Options o;
  o.stats_flush_interval = absl::InfiniteDuration();
  o.hot_cache_bytes = 0;
  auto cache = *Cache::Open(dir.path(), o);
  CachedClient client(*cache, [](const Request& r) -> absl::StatusOr<Response> {
    return MakeAnswer("answer to " + r.messages.back().content);
  });
  constexpr int kEntries = 9000;
  for (int i = 0; i < kEntries; ++i) {
    ASSERT_TRUE(client.Complete(MakeRequest(absl::StrCat("q", i))).ok());
  }
  for (int i = 0; i < kEntries; ++i) {
    ASSERT_EQ(client.Complete(MakeRequest(absl::StrCat("q", i)))->cache_status,
              CacheStatus::kExactHit);
  }
  ASSERT_TRUE(cache->FlushStats().ok());
  EXPECT_EQ(cache->Report()->total.exact_hits, kEntries);
  EXPECT_EQ(cache->Stats()->hits_recorded, kEntries);
}

}  // namespace
}  // namespace promptcache
