// LedgerRows on a real store (RocksDB on disk): a staged delta reaches disk and
// the mirror only together, rows load back at open, an unreadable row is
// counted and skipped. MissDelta prices a miss.
#include "cache/ledger_rows.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "promptcache/options.h"
#include "raw_store.h"
#include "store/entry_codec.h"
#include "test_util.h"

namespace promptcache::internal {
namespace {

LedgerRow Delta(const std::string& model, int64_t misses, int64_t spent) {
  LedgerRow d;
  d.ns = "team";
  d.backend = "openai";
  d.model = model;
  d.requests = misses;
  d.misses = misses;
  d.spent_nusd = spent;
  return d;
}

int64_t TotalMisses(const LedgerRows& rows) {
  int64_t total = 0;
  for (const LedgerRow& row : rows.Rows()) total += row.misses;
  return total;
}

TEST(LedgerRowsTest, StagedDeltasPersistAndLoadBack) {
  testing::TempDir dir;
  {
    std::unique_ptr<RocksStore> store = testing::OpenTestStore(dir.path());
    ASSERT_NE(store, nullptr);
    LedgerRows rows;
    int64_t unreadable = 0;
    std::unique_ptr<StoreBatch> none = store->NewBatch();
    ASSERT_TRUE(rows.Load(store.get(), false, none.get(), &unreadable).ok());
    EXPECT_TRUE(rows.Rows().empty());
    int64_t committed = 0;
    for (const LedgerRow& d :
         {Delta("gpt-4o", 1, 100), Delta("gpt-4o", 2, 50), Delta("o1", 1, 7)}) {
      std::unique_ptr<StoreBatch> batch = store->NewBatch();
      rows.Stage(d, batch.get());
      // Staged, not yet committed: the mirror is unchanged.
      EXPECT_EQ(TotalMisses(rows), committed);
      ASSERT_TRUE(store->Write(batch.get()).ok());
      rows.Commit(d);
      committed += d.misses;
      EXPECT_EQ(TotalMisses(rows), committed);
    }
    // A delta whose batch was never written stays out of both.
    std::unique_ptr<StoreBatch> dropped = store->NewBatch();
    rows.Stage(Delta("gpt-4o", 1000, 1000), dropped.get());
    ASSERT_EQ(rows.Rows().size(), 2u);
    // A row that does not decode, as a damaged store could hold.
    std::unique_ptr<StoreBatch> broken = store->NewBatch();
    broken->Put(Family::kLedger, LedgerKey("team", "openai", "broken"),
                "\x01garbage");
    ASSERT_TRUE(store->Write(broken.get()).ok());
  }
  std::unique_ptr<RocksStore> store = testing::OpenTestStore(dir.path());
  ASSERT_NE(store, nullptr);
  LedgerRows rows;
  int64_t unreadable = 0;
  std::unique_ptr<StoreBatch> none = store->NewBatch();
  ASSERT_TRUE(rows.Load(store.get(), false, none.get(), &unreadable).ok());
  EXPECT_EQ(unreadable, 1);
  std::vector<LedgerRow> loaded = rows.Rows();
  ASSERT_EQ(loaded.size(), 2u);
  for (const LedgerRow& row : loaded) {
    if (row.model == "gpt-4o") {
      EXPECT_EQ(row.misses, 3);
      EXPECT_EQ(row.spent_nusd, 150);
    } else {
      EXPECT_EQ(row.model, "o1");
      EXPECT_EQ(row.spent_nusd, 7);
    }
    EXPECT_EQ(row.ns, "team");
    EXPECT_EQ(row.backend, "openai");
  }
}

TEST(LedgerRowsTest, MissDeltaPricesTheAnswer) {
  PriceBook prices;
  const ModelPrice price = testing::OpenAiPrice("gpt-4o-mini", 1e-6, 2e-6);
  ASSERT_TRUE(prices.Set(price).ok());

  Request request = testing::MakeRequest("what is a tuple", "team");
  Response answer = testing::MakeAnswer("an immutable sequence");
  answer.usage.input_tokens = 1000;
  answer.usage.output_tokens = 500;
  answer.upstream_latency = absl::Milliseconds(800);
  const LedgerRow priced = MissDelta(prices, true, request, &answer);
  EXPECT_EQ(priced.model, "gpt-4o-mini");
  EXPECT_EQ(priced.misses, 1);
  EXPECT_EQ(priced.spent_nusd, CostNanoDollars(price, answer.usage));
  EXPECT_GT(priced.spent_nusd, 0);
  EXPECT_EQ(priced.upstream_us_spent, 800'000);
  EXPECT_TRUE(answer.priced);
  EXPECT_DOUBLE_EQ(answer.dollars_spent, priced.spent_nusd * 1e-9);

  request.model = "my-llama";
  const LedgerRow pooled = MissDelta(prices, true, request, &answer);
  EXPECT_EQ(pooled.model, kPooledUnpricedModel);
  EXPECT_EQ(pooled.unpriced_events, 1);
  EXPECT_FALSE(answer.priced);
  EXPECT_EQ(MissDelta(prices, false, request, &answer).model, "my-llama");

  const LedgerRow failed = MissDelta(prices, false, request, nullptr);
  EXPECT_EQ(failed.upstream_errors, 1);
  EXPECT_EQ(failed.spent_nusd, 0);
}

}  // namespace
}  // namespace promptcache::internal
