// internal::Budget alone: what an entry is charged, what its hit saves,
// victims down to the low watermark (and back when their deletion failed),
// and loading a store's entries, measuring those of an older store once.
#include "cache/budget.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "cache/cache_internal.h"
#include "gtest/gtest.h"
#include "raw_store.h"
#include "store/entry_codec.h"
#include "test_util.h"

namespace promptcache::internal {
namespace {

Key128 KeyOf(int i) { return Key128{0x1234, static_cast<uint64_t>(i)}; }

EntryStats Sized(int64_t bytes, int64_t cost) {
  EntryStats stats;
  stats.bytes = bytes;
  stats.cost_nusd = cost;
  return stats;
}

TEST(BudgetTest, ChargesVectorsAndPricesHits) {
  const int64_t plain = Budget::EntryBytes(1000, 0, 0);
  EXPECT_GT(plain, 1000);
  // A vector adds its floats twice (record and index) and its text.
  EXPECT_GE(Budget::EntryBytes(1000, 256, 80), plain + 2 * 256 * 4 + 80);

  Options options;
  ASSERT_TRUE(
      options.prices.Set(testing::OpenAiPrice("gpt-4o-mini", 1.0, 2.0)).ok());
  const Budget budget(options);
  EXPECT_FALSE(budget.enabled());                       // no max_bytes
  const Response answer = testing::MakeAnswer("fine");  // 100 in, 50 out
  // Per 1M tokens $1 in, $2 out: 100 + 2 x 50 = 200 micro-dollars.
  EXPECT_EQ(budget.CostPerHit(testing::MakeRequest("q"), answer), 200000);
  // Unpriced: a token count, so that it ranks below any priced entry.
  EXPECT_EQ(budget.CostPerHit(testing::MakeRequest("q", "ns", "unknown-model"),
                              answer),
            150);
}

TEST(BudgetTest, WithoutABudgetNothingIsTrackedOrEvicted) {
  Options options;
  Budget none(options);
  none.Track(KeyOf(1), Sized(1 << 30, 1), 0);
  EXPECT_TRUE(none.Tracks(KeyOf(1)));
  EXPECT_TRUE(none.Tracks(KeyOf(2)));
  EXPECT_TRUE(none.TakeVictims(0).empty());
  EXPECT_EQ(none.tracked_bytes(), 0);
  // A read-only cache keeps no budget either: it deletes nothing.
  options.max_bytes = 1 << 20;
  options.read_only = true;
  EXPECT_FALSE(Budget(options).enabled());
}

TEST(BudgetTest, EvictsDownToTheLowWatermarkAndRestoresFailedVictims) {
  Options options;
  options.max_bytes = 100000;
  options.eviction_low_watermark = 0.5;
  Budget budget(options);
  ASSERT_TRUE(budget.enabled());
  for (int i = 0; i < 100; ++i) {
    budget.Track(KeyOf(i), Sized(1000, 1000 + i), /*now_us=*/i);
  }
  EXPECT_EQ(budget.tracked_bytes(), 100000);
  EXPECT_TRUE(budget.TakeVictims(1000).empty());  // at the budget, not over
  budget.Track(KeyOf(100), Sized(1000, 5000), 100);
  const std::vector<EvictionTracker::Slot> victims = budget.TakeVictims(1000);
  EXPECT_EQ(victims.size(), 51u);
  EXPECT_LE(budget.tracked_bytes(), 50000);
  absl::flat_hash_set<Key128> taken;
  for (const EvictionTracker::Slot& slot : victims) {
    EXPECT_FALSE(budget.Tracks(slot.key));
    taken.insert(slot.key);
  }
  EXPECT_EQ(taken.size(), victims.size());
  // The deletion of victims [10, 51) failed: they are tracked again.
  budget.Restore(victims, 10);
  for (size_t k = 0; k < victims.size(); ++k) {
    EXPECT_EQ(budget.Tracks(victims[k].key), k >= 10) << k;
  }
  budget.CountEvicted(10);
  EXPECT_EQ(budget.evicted(), 10);
  // Hits of a tracked entry are kept; those of a forgotten one dropped.
  budget.Touch(victims[20].key, 3, 2000);
  budget.Forget(victims[20].key);
  EXPECT_FALSE(budget.Tracks(victims[20].key));
}

TEST(BudgetTest, LoadsSizedCountersAndMeasuresAnOlderStoreOnce) {
  testing::TempDir dir;
  std::unique_ptr<RocksStore> store = testing::OpenTestStore(dir.path());
  ASSERT_NE(store, nullptr);
  // An older store: entries without sizes in their counters, no marker.
  std::unique_ptr<StoreBatch> batch = store->NewBatch();
  for (int i = 0; i < 3; ++i) {
    StoredEntry entry;
    entry.backend = "openai";
    entry.model = "gpt-4o-mini";
    entry.answers.push_back(
        testing::MakeAnswer(std::string(200 * (i + 1), 'a')));
    entry.body_keys.emplace_back();
    batch->Put(Family::kEntries, KeyOf(i).ToBytes(), EncodeEntry(entry));
  }
  ASSERT_TRUE(store->Write(batch.get()).ok());
  Options options;
  options.max_bytes = 1 << 20;
  {
    Budget budget(options);
    ASSERT_TRUE(budget.Load(store.get()).ok());
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(budget.Tracks(KeyOf(i)));
    EXPECT_FALSE(budget.Tracks(KeyOf(3)));
    EXPECT_GT(budget.tracked_bytes(), 1200);
  }
  // Measured once: the sizes are in the counters now, with the marker.
  std::string marker;
  EXPECT_TRUE(*store->Get(Family::kMeta, kSizedStatsKey, &marker));
  std::string value;
  ASSERT_TRUE(*store->Get(Family::kEntryStats, KeyOf(2).ToBytes(), &value));
  EntryStats stats;
  ASSERT_TRUE(DecodeEntryStats(value, &stats).ok());
  EXPECT_GT(stats.bytes, 600);
  // Loaded from the counters alone the next time (an entry without them is
  // not tracked: it has nothing to be charged).
  std::unique_ptr<StoreBatch> unsized = store->NewBatch();
  unsized->Delete(Family::kEntryStats, KeyOf(0).ToBytes());
  ASSERT_TRUE(store->Write(unsized.get()).ok());
  Budget again(options);
  ASSERT_TRUE(again.Load(store.get()).ok());
  EXPECT_FALSE(again.Tracks(KeyOf(0)));
  EXPECT_TRUE(again.Tracks(KeyOf(2)));
}

}  // namespace
}  // namespace promptcache::internal
