// Prices: the shipped table, overrides, tiers and cost arithmetic.
#include "promptcache/price_book.h"

#include <fstream>

#include "gtest/gtest.h"
#include "test_util.h"

namespace promptcache {
namespace {

TEST(PriceBookTest, ShippedTableCoversMainProviders) {
  const PriceBook& book = PriceBook::Default();
  EXPECT_GT(book.size(), 40u);
  EXPECT_EQ(PriceBook::DefaultPricesDate().size(), 10u);  // YYYY-MM-DD
  for (const char* backend :
       {"openai", "anthropic", "google", "mistral", "deepseek"}) {
    int count = 0;
    for (const ModelPrice& p : book.All()) count += p.backend == backend;
    EXPECT_GE(count, 2) << backend;
  }
  const ModelPrice* mini = book.Find("openai", "gpt-4o-mini");
  ASSERT_NE(mini, nullptr);
  EXPECT_GT(mini->base.output, mini->base.input);
  EXPECT_EQ(book.Find("self-hosted", "llama-3.1-8b"), nullptr);
  EXPECT_EQ(book.Find("openai", "no-such-model"), nullptr);
}

TEST(PriceBookTest, DateSuffixAndWildcardLookup) {
  PriceBook book;
  ASSERT_TRUE(book.Set({"openai", "gpt-x", {1.0, 0.5, {}, 4.0}, {}}).ok());
  ASSERT_TRUE(book.Set({"self-hosted", "*", {0.1, {}, {}, 0.2}, {}}).ok());
  ASSERT_NE(book.Find("openai", "gpt-x-2025-04-14"), nullptr);
  ASSERT_NE(book.Find("openai", "gpt-x-20250414"), nullptr);
  EXPECT_EQ(book.Find("openai", "gpt-x-mini"), nullptr);
  const ModelPrice* any = book.Find("self-hosted", "llama-3.1-70b");
  ASSERT_NE(any, nullptr);
  EXPECT_EQ(any->base.output, 0.2);
}

TEST(PriceBookTest, CostIsExactInNanoDollars) {
  ModelPrice p{"openai", "m", {2.5, 1.25, {}, 10.0}, {}};
  Usage u;
  u.input_tokens = 1000;
  u.output_tokens = 500;
  // 1000 * 2.5/1e6 + 500 * 10/1e6 = 0.0025 + 0.005 = 0.0075 USD.
  EXPECT_EQ(CostNanoDollars(p, u), 7'500'000);
  u.cached_input_tokens = 400;  // 600 * 2.5 + 400 * 1.25 per 1e6
  EXPECT_EQ(CostNanoDollars(p, u), 1'500'000 + 500'000 + 5'000'000);
}

TEST(PriceBookTest, LongContextTierAndCacheWrites) {
  ModelPrice p{"anthropic", "s", {3.0, 0.3, 3.75, 15.0}, {}};
  p.tiers.push_back({200000, {6.0, 0.6, 7.5, 22.5}});
  Usage small;
  small.input_tokens = 1000;
  small.cache_write_input_tokens = 1000;
  EXPECT_EQ(CostNanoDollars(p, small), 3'750'000);
  Usage big;
  big.input_tokens = 300000;
  big.output_tokens = 1000;
  EXPECT_EQ(CostNanoDollars(p, big), 300000LL * 6000 + 1000LL * 22500);
}

TEST(PriceBookTest, UserFileOverridesAndBadFilesAreErrors) {
  testing::TempDir dir;
  const std::string path = dir.Sub("prices.json");
  std::ofstream(path) << R"({"format_version":1,"prices_taken":"2026-01-01",
    "models":[{"backend":"openai","model":"gpt-4o-mini","input":9,"output":9},
              {"backend":"self-hosted","model":"llama","input":0.05,"output":0.1}]})";
  absl::StatusOr<PriceBook> user = PriceBook::FromFile(path);
  ASSERT_TRUE(user.ok()) << user.status();
  PriceBook book = PriceBook::Default();
  book.MergeFrom(*user);
  EXPECT_EQ(book.Find("openai", "gpt-4o-mini")->base.input, 9);
  EXPECT_NE(book.Find("self-hosted", "llama"), nullptr);
  EXPECT_NE(book.Find("anthropic", "claude-sonnet-4-5"), nullptr);

  EXPECT_EQ(PriceBook::FromFile(dir.Sub("missing.json")).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<PriceBook> bad = PriceBook::FromJson(
      R"({"format_version":1,"models":[{"backend":"a","model":"b","input":-1,"output":1}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("a/b"), absl::string_view::npos);
  EXPECT_FALSE(PriceBook::FromJson("{").ok());
  EXPECT_FALSE(PriceBook::FromJson(R"({"format_version":2,"models":[]})").ok());
  EXPECT_FALSE(
      PriceBook::FromJson(
          R"({"format_version":1,"models":[{"backend":"a","input":1,"output":1}]})")
          .ok());
  EXPECT_FALSE(book.Set({"", "m", {}, {}}).ok());
}

}  // namespace
}  // namespace promptcache
