// HitCounters: hits counted per ledger row and per entry, taken out whole
// by the flush and put back when it fails.
#include "cache/hit_counters.h"

#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "promptcache/options.h"
#include "store/entry_codec.h"
#include "test_util.h"

namespace promptcache::internal {
namespace {

PriceBook Prices() {
  PriceBook book;
  EXPECT_TRUE(book.Set(testing::OpenAiPrice("gpt-4o", 2.5e-6, 10e-6)).ok());
  return book;
}

ServedHit Hit(const Key128& entry, absl::string_view model, CacheStatus how) {
  ServedHit hit;
  hit.entry = entry;
  hit.ns = "team";
  hit.backend = "openai";
  hit.model = model;
  hit.how = how;
  hit.usage.input_tokens = 1000;
  hit.usage.output_tokens = 200;
  hit.upstream_latency = absl::Milliseconds(1500);
  hit.now_us = 42;
  return hit;
}

TEST(HitCountersTest, CountsServedHitsInTheirLedgerRow) {
  const PriceBook prices = Prices();
  HitCounters counters(&prices, /*pool_unpriced_models=*/false);
  const Key128 a{1, 2}, b{3, 4};
  const HitCounters::Saving first =
      counters.CountServed(Hit(a, "gpt-4o", CacheStatus::kExactHit));
  EXPECT_TRUE(first.priced);
  Usage usage;
  usage.input_tokens = 1000;
  usage.output_tokens = 200;
  EXPECT_EQ(first.nusd,
            CostNanoDollars(*prices.Find("openai", "gpt-4o"), usage));
  EXPECT_GT(first.nusd, 0);
  // Another entry (another shard, perhaps), the same row.
  counters.CountServed(Hit(b, "gpt-4o", CacheStatus::kCoalesced));

  std::vector<std::pair<Key128, HitCounts>> entries;
  HitCounters::Taken taken = counters.TakeAll(true, &entries);
  ASSERT_EQ(taken.ledger.size(), 1u);
  const LedgerRow& row = taken.ledger.begin()->second;
  EXPECT_EQ(taken.ledger.begin()->first, LedgerKey("team", "openai", "gpt-4o"));
  EXPECT_EQ(row.requests, 2);
  EXPECT_EQ(row.exact_hits, 1);
  EXPECT_EQ(row.coalesced, 1);
  EXPECT_EQ(row.saved_nusd, 2 * first.nusd);
  EXPECT_EQ(row.input_tokens_served, 2000);
  EXPECT_EQ(row.upstream_us_saved, 3'000'000);
  EXPECT_EQ(row.unpriced_events, 0);
  // CountServed leaves the entries' own counters alone.
  EXPECT_TRUE(entries.empty());
  // Taken whole: nothing left.
  EXPECT_TRUE(counters.TakeAll(true, &entries).ledger.empty());
}

TEST(HitCountersTest, UnpricedModelsArePooledWhenAsked) {
  const PriceBook prices = Prices();
  for (const bool pool : {false, true}) {
    HitCounters counters(&prices, pool);
    counters.CountServed(Hit({1, 1}, "my-llama", CacheStatus::kExactHit));
    counters.CountServed(Hit({2, 2}, "my-mistral", CacheStatus::kExactHit));
    std::vector<std::pair<Key128, HitCounts>> entries;
    HitCounters::Taken taken = counters.TakeAll(false, &entries);
    if (pool) {
      ASSERT_EQ(taken.ledger.size(), 1u);
      const LedgerRow& row = taken.ledger.begin()->second;
      EXPECT_EQ(row.model, kPooledUnpricedModel);
      EXPECT_EQ(row.requests, 2);
      EXPECT_EQ(row.unpriced_events, 2);
      EXPECT_EQ(row.saved_nusd, 0);
    } else {
      EXPECT_EQ(taken.ledger.size(), 2u);
    }
  }
}

TEST(HitCountersTest, SemanticHitsGoToTheLogOnlyWithARequestKey) {
  const PriceBook prices = Prices();
  HitCounters counters(&prices, false);
  const Key128 request{7, 7};
  ServedHit logged = Hit({1, 2}, "gpt-4o", CacheStatus::kSemanticHit);
  logged.request_key = &request;
  logged.similarity = 0.93;
  logged.query = "how do i sort a list";
  counters.CountServed(logged);
  counters.CountServed(Hit({1, 2}, "gpt-4o", CacheStatus::kSemanticHit));
  std::vector<std::pair<Key128, HitCounts>> entries;
  HitCounters::Taken taken = counters.TakeAll(true, &entries);
  ASSERT_EQ(taken.semantic.size(), 1u);
  EXPECT_EQ(taken.semantic[0].entry, (Key128{1, 2}));
  EXPECT_EQ(taken.semantic[0].request, request);
  EXPECT_DOUBLE_EQ(taken.semantic[0].similarity, 0.93);
  EXPECT_EQ(taken.semantic[0].query, "how do i sort a list");
  EXPECT_EQ(taken.semantic[0].ledger_key,
            LedgerKey("team", "openai", "gpt-4o"));
  EXPECT_EQ(taken.ledger.begin()->second.semantic_hits, 2);
  // Put back after a failed write, they come out again.
  counters.AddSemanticHits(std::move(taken.semantic));
  counters.AddLedgerDelta(taken.ledger.begin()->second);
  HitCounters::Taken again = counters.TakeAll(false, &entries);
  EXPECT_EQ(again.semantic.size(), 1u);
  EXPECT_EQ(again.ledger.begin()->second.semantic_hits, 2);
}

TEST(HitCountersTest, EntryCountersWaitForAFlushThatTakesThem) {
  const PriceBook prices = Prices();
  HitCounters counters(&prices, false);
  const Key128 a{1, 2}, b{3, 4};
  counters.AddEntryHits(a, {1, 10, 5});
  counters.AddEntryHits(a, {2, 30, 7});
  counters.AddEntryHits(b, {1, 20, 0});
  std::vector<std::pair<Key128, HitCounts>> entries;
  // A flush of the ledger only leaves them.
  counters.TakeAll(false, &entries);
  EXPECT_TRUE(entries.empty());
  counters.ForgetEntry(b);  // deleted from the store meanwhile
  counters.TakeAll(true, &entries);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].first, a);
  EXPECT_EQ(entries[0].second.hits, 3);
  EXPECT_EQ(entries[0].second.last_hit_us, 30);
  EXPECT_EQ(entries[0].second.saved_nusd, 12);
  entries.clear();
  counters.TakeAll(true, &entries);
  EXPECT_TRUE(entries.empty());
}

// Concurrent hits lose no count (and TSan checks the shards' locks).
TEST(HitCountersTest, ConcurrentHitsAreAllCounted) {
  const PriceBook prices = Prices();
  HitCounters counters(&prices, false);
  constexpr int kThreads = 4, kHits = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kHits; ++i) {
        const Key128 key{static_cast<uint64_t>(t),
                         static_cast<uint64_t>(i % 37)};
        counters.CountServed(Hit(key, "gpt-4o", CacheStatus::kExactHit));
        counters.AddEntryHits(key, {1, i, 1});
      }
    });
  }
  std::vector<std::pair<Key128, HitCounts>> entries;
  int64_t requests = 0;
  for (int round = 0; round < 20; ++round) {
    for (auto& [key, row] : counters.TakeAll(true, &entries).ledger) {
      requests += row.requests;
    }
  }
  for (std::thread& t : threads) t.join();
  for (auto& [key, row] : counters.TakeAll(true, &entries).ledger) {
    requests += row.requests;
  }
  int64_t hits = 0;
  for (const auto& [key, counts] : entries) hits += counts.hits;
  EXPECT_EQ(requests, kThreads * kHits);
  EXPECT_EQ(hits, kThreads * kHits);
}

}  // namespace
}  // namespace promptcache::internal
