// The store: persistence, TTL, tenants, schema, ledger consistency.
#include "promptcache/cache.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "cache/hot_answers.h"
#include "gtest/gtest.h"
#include "promptcache/cache_tiers.h"
#include "promptcache/cached_client.h"
#include "store/entry_codec.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

// A settable clock for TTL tests.
struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
};

Options TestOptions(FakeClock* clock = nullptr) {
  Options o;
  o.stats_flush_interval = absl::InfiniteDuration();  // flush explicitly
  if (clock != nullptr) o.clock = [clock] { return clock->now; };
  return o;
}

std::unique_ptr<Cache> OpenOrDie(const std::string& path,
                                 const Options& options) {
  absl::StatusOr<std::unique_ptr<Cache>> cache = Cache::Open(path, options);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.ok() ? *std::move(cache) : nullptr;
}

// Stores `answer` for `request` as a miss would.
Response Store(Cache& cache, const Request& request, Response answer,
               std::optional<absl::Duration> ttl = std::nullopt) {
  absl::StatusOr<CanonicalizedRequest> c = Canonicalize(request);
  EXPECT_TRUE(c.ok()) << c.status();
  absl::Status s = CacheTiers(cache).StoreMiss(request, *c, ttl, &answer);
  EXPECT_TRUE(s.ok()) << s;
  return answer;
}

absl::StatusOr<Response> Get(Cache& cache, const Request& request) {
  return CacheTiers(cache).GetExact(ComputeKeys(request)->exact);
}

TEST(CacheTest, StoreGetAndReopenKeepsEntriesAndLedger) {
  TempDir dir;
  const Request q = MakeRequest("What is the capital of France?");
  {
    auto cache = OpenOrDie(dir.path(), TestOptions());
    EXPECT_TRUE(absl::IsNotFound(Get(*cache, q).status()));
    Response stored = Store(*cache, q, MakeAnswer("Paris."));
    EXPECT_TRUE(stored.stored);
    EXPECT_TRUE(stored.priced);
    EXPECT_GT(stored.dollars_spent, 0);
    absl::StatusOr<Response> hit = Get(*cache, q);
    ASSERT_TRUE(hit.ok());
    EXPECT_EQ(hit->text, "Paris.");
    EXPECT_EQ(hit->usage.input_tokens, 100);
    CacheTiers(*cache).RecordHit(q, *hit->entry_key, CacheStatus::kExactHit,
                                 &*hit);
    EXPECT_NEAR(hit->dollars_saved, stored.dollars_spent, 1e-12);
  }  // closing flushes the hit
  auto cache = OpenOrDie(dir.path(), TestOptions());
  ASSERT_EQ(Get(*cache, q)->text, "Paris.");
  absl::StatusOr<SavingsReport> report = cache->Report();
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->rows.size(), 1u);
  const LedgerRow& row = report->rows[0];
  EXPECT_EQ(row.ns, "tenant-a");
  EXPECT_EQ(row.backend, "openai");
  EXPECT_EQ(row.requests, 2);
  EXPECT_EQ(row.misses, 1);
  EXPECT_EQ(row.stored, 1);
  EXPECT_EQ(row.exact_hits, 1);
  EXPECT_EQ(row.saved_nusd, row.spent_nusd);
  EXPECT_EQ(row.upstream_us_saved, 800'000);
  absl::StatusOr<EntryInfo> info = cache->Inspect(ComputeKeys(q)->exact);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->hit_count, 1);
  EXPECT_EQ(info->saved_nusd, row.saved_nusd);
  EXPECT_EQ(info->canonical_request, *CanonicalRequest(q));
}

// Hit counters are added by a merge operator (no read per flushed entry):
// counts of many flushes add up, survive reopening, are kept by a
// replacement of the entry.
TEST(CacheTest, HitCountersAddUpAcrossFlushesAndReopen) {
  TempDir dir;
  FakeClock clock;
  const Request q = MakeRequest("How tall is Everest?");
  const Key128 key = ComputeKeys(q)->exact;
  int64_t saved_per_hit = 0;
  {
    auto cache = OpenOrDie(dir.path(), TestOptions(&clock));
    Store(*cache, q, MakeAnswer("8849 m"));
    for (int flush = 0; flush < 5; ++flush) {
      for (int i = 0; i < 3; ++i) {
        absl::StatusOr<Response> hit = Get(*cache, q);
        ASSERT_TRUE(hit.ok());
        CacheTiers(*cache).RecordHit(q, key, CacheStatus::kExactHit, &*hit);
        saved_per_hit = static_cast<int64_t>(hit->dollars_saved * 1e9 + 0.5);
      }
      clock.now += absl::Seconds(1);
      ASSERT_TRUE(cache->FlushStats().ok());
    }
    absl::StatusOr<EntryInfo> info = cache->Inspect(key);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->hit_count, 15);
    EXPECT_EQ(info->saved_nusd, 15 * saved_per_hit);
    // The last hit was recorded just before the last flush's clock step.
    EXPECT_EQ(info->last_hit, clock.now - absl::Seconds(1));
    // A replacement keeps the history, and later hits add to it.
    Store(*cache, q, MakeAnswer("8,849 metres"));
    absl::StatusOr<Response> hit = Get(*cache, q);
    ASSERT_TRUE(hit.ok());
    CacheTiers(*cache).RecordHit(q, key, CacheStatus::kExactHit, &*hit);
  }
  auto cache = OpenOrDie(dir.path(), TestOptions(&clock));
  absl::StatusOr<EntryInfo> info = cache->Inspect(key);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->hit_count, 16);
  EXPECT_EQ(info->saved_nusd, 16 * saved_per_hit);
}

// Hits on held answers are counted in the hot answers' slots; the counts of
// answers that leave the hot set (evicted by newer stores) before a flush
// must reach the store all the same.
TEST(CacheTest, HitCountsOfAnswersDroppedFromTheHotSetAreKept) {
  TempDir dir;
  Options options = TestOptions();
  options.hot_cache_bytes = 16 * 64 * 1024;  // 64 KiB a shard
  auto cache = OpenOrDie(dir.path(), options);
  auto request = [](int i) {
    return MakeRequest(absl::StrCat("Question number ", i, "?"));
  };
  const std::string text(900, 'a');
  for (int i = 0; i < 200; ++i) Store(*cache, request(i), MakeAnswer(text));
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 200; ++i) {
      const Key128 key = ComputeKeys(request(i))->exact;
      absl::StatusOr<Response> hit = CacheTiers(*cache).GetExact(key);
      ASSERT_TRUE(hit.ok()) << hit.status();
      CacheTiers(*cache).RecordHit(request(i), key, CacheStatus::kExactHit,
                                   &*hit);
    }
  }
  // 3 MB of newer answers through a 1 MiB hot set (~60 answers a shard,
  // ~200 newer ones stored into each): the first 200, read once and so
  // given one second chance, go; their counts reach the pending map.
  for (int i = 200; i < 3400; ++i) Store(*cache, request(i), MakeAnswer(text));
  ASSERT_LE(cache->GetMemoryStats().hot_answers, 1000);
  ASSERT_TRUE(cache->FlushStats().ok());
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<EntryInfo> info =
        cache->Inspect(ComputeKeys(request(i))->exact);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->hit_count, 2) << i;
  }
}

// The ledger is written every stats_flush_interval, the entries' own hit
// counters only every entry_stats_flush_interval (and on FlushStats and
// close). Seen from read-only opens of the same directory.
TEST(CacheTest, EntryCountersKeepTheirOwnFlushInterval) {
  TempDir dir;
  Options options = TestOptions();
  options.stats_flush_interval = absl::Milliseconds(10);
  options.entry_stats_flush_interval = absl::InfiniteDuration();
  auto cache = OpenOrDie(dir.path(), options);
  const Request q = MakeRequest("How far is the Moon?");
  const Key128 key = ComputeKeys(q)->exact;
  Store(*cache, q, MakeAnswer("384,400 km"));
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Response> hit = CacheTiers(*cache).GetExact(key);
    ASSERT_TRUE(hit.ok());
    CacheTiers(*cache).RecordHit(q, key, CacheStatus::kExactHit, &*hit);
  }
  // A report on the writer writes the ledger, not the entries' counters.
  absl::StatusOr<SavingsReport> report = cache->Report();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->total.exact_hits, 3);
  Options read_only = TestOptions();
  read_only.read_only = true;
  auto hits_seen = [&](int64_t* ledger_hits, int64_t* entry_hits) {
    auto view = OpenOrDie(dir.path(), read_only);
    ASSERT_NE(view, nullptr);
    absl::StatusOr<SavingsReport> r = view->Report();
    ASSERT_TRUE(r.ok()) << r.status();
    *ledger_hits = r->total.exact_hits;
    absl::StatusOr<EntryInfo> info = view->Inspect(key);
    ASSERT_TRUE(info.ok()) << info.status();
    *entry_hits = info->hit_count;
  };
  int64_t ledger_hits = 0, entry_hits = 0;
  hits_seen(&ledger_hits, &entry_hits);
  EXPECT_EQ(ledger_hits, 3);
  EXPECT_EQ(entry_hits, 0) << "entry counters wait for their interval";
  // The background flush, every 10 ms, writes the ledger only.
  absl::SleepFor(absl::Milliseconds(100));
  hits_seen(&ledger_hits, &entry_hits);
  EXPECT_EQ(entry_hits, 0);
  ASSERT_TRUE(cache->FlushStats().ok());
  hits_seen(&ledger_hits, &entry_hits);
  EXPECT_EQ(ledger_hits, 3);
  EXPECT_EQ(entry_hits, 3);
}

TEST(CacheTest, FlushIntervalsMustBePositive) {
  TempDir dir;
  Options options = TestOptions();
  options.stats_flush_interval = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<Cache>> cache =
      Cache::Open(dir.path(), options);
  ASSERT_TRUE(absl::IsInvalidArgument(cache.status()));
  EXPECT_NE(cache.status().message().find("stats_flush_interval"),
            std::string::npos);
  options = TestOptions();
  options.entry_stats_flush_interval = -absl::Seconds(1);
  cache = Cache::Open(dir.path(), options);
  ASSERT_TRUE(absl::IsInvalidArgument(cache.status()));
  EXPECT_NE(cache.status().message().find("entry_stats_flush_interval"),
            std::string::npos);
}

TEST(EntryStatsCodecTest, DeltasRoundTripAndRejectRecords) {
  internal::EntryStatsDelta d{3, 1234, 5678}, back;
  ASSERT_TRUE(
      internal::DecodeEntryStatsDelta(internal::EncodeEntryStatsDelta(d), &back)
          .ok());
  EXPECT_EQ(back.hits, 3);
  EXPECT_EQ(back.last_hit_us, 1234);
  EXPECT_EQ(back.saved_nusd, 5678);
  internal::EntryStats stats;
  stats.hits = 1;
  EXPECT_FALSE(
      internal::DecodeEntryStatsDelta(internal::EncodeEntryStats(stats), &back)
          .ok());
  EXPECT_FALSE(
      internal::DecodeEntryStats(internal::EncodeEntryStatsDelta(d), &stats)
          .ok());
}

TEST(CacheTest, TtlExpiryIsNeverServed) {
  TempDir dir;
  FakeClock clock;
  auto cache = OpenOrDie(dir.path(), TestOptions(&clock));
  const Request q = MakeRequest("What's new today?");
  const Request forever = MakeRequest("What is 2+2?");
  Store(*cache, q, MakeAnswer("news"), absl::Minutes(10));
  Store(*cache, forever, MakeAnswer("4"), absl::InfiniteDuration());
  clock.now += absl::Minutes(9);
  EXPECT_TRUE(Get(*cache, q).ok());
  clock.now += absl::Minutes(1);
  EXPECT_TRUE(absl::IsNotFound(Get(*cache, q).status()));
  clock.now += absl::Hours(24 * 365);
  EXPECT_TRUE(Get(*cache, forever).ok());
  // The default TTL applies when none is given.
  const Request d = MakeRequest("default ttl");
  Store(*cache, d, MakeAnswer("x"));
  clock.now += absl::Hours(24 * 7) - absl::Seconds(1);
  EXPECT_TRUE(Get(*cache, d).ok());
  clock.now += absl::Seconds(1);
  EXPECT_FALSE(Get(*cache, d).ok());
  // Stats see the expired entries; purge --expired removes them.
  EXPECT_EQ(cache->Stats()->expired_entries, 2);
  PurgeFilter expired;
  expired.expired_only = true;
  EXPECT_EQ(*cache->Purge(expired), 2);
  EXPECT_EQ(cache->Stats()->entries, 1);
}

TEST(CacheTest, NamespacesNeverShareEntries) {
  TempDir dir;
  auto cache = OpenOrDie(dir.path(), TestOptions());
  const Request a = MakeRequest("What is our refund policy?", "tenant-a");
  const Request b = MakeRequest("What is our refund policy?", "tenant-b");
  Store(*cache, a, MakeAnswer("Tenant A: 30 days."));
  EXPECT_TRUE(Get(*cache, a).ok());
  EXPECT_TRUE(absl::IsNotFound(Get(*cache, b).status()));
  PurgeFilter only_a;
  only_a.ns = "tenant-a";
  Store(*cache, b, MakeAnswer("Tenant B: 14 days."));
  EXPECT_EQ(Get(*cache, b)->text, "Tenant B: 14 days.");
  EXPECT_EQ(*cache->Purge(only_a), 1);
  EXPECT_FALSE(Get(*cache, a).ok());
  EXPECT_TRUE(Get(*cache, b).ok());
}

TEST(CacheTest, IncompleteAnswersAreRefused) {
  TempDir dir;
  auto cache = OpenOrDie(dir.path(), TestOptions());
  const Request q = MakeRequest("Write a long essay");
  for (const char* reason : {"length", "content_filter", "error", ""}) {
    Response r = MakeAnswer("partial", reason);
    absl::Status s =
        CacheTiers(*cache).StoreMiss(q, *Canonicalize(q), std::nullopt, &r);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << reason;
    EXPECT_FALSE(r.stored);
  }
  EXPECT_FALSE(Get(*cache, q).ok());
  EXPECT_EQ(cache->Stats()->entries, 0);
}

TEST(CacheTest, UnknownSchemaVersionAndForeignDatabasesAreClearErrors) {
  TempDir dir;
  {
    auto cache = OpenOrDie(dir.path(), TestOptions());
    Store(*cache, MakeRequest("q"), MakeAnswer("a"));
  }
  // Missing path without create_if_missing.
  Options no_create = TestOptions();
  no_create.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<Cache>> missing =
      Cache::Open(dir.Sub("nope"), no_create);
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  // Read-only open works and refuses writes.
  Options ro = TestOptions();
  ro.read_only = true;
  {
    auto cache = OpenOrDie(dir.path(), ro);
    EXPECT_TRUE(Get(*cache, MakeRequest("q")).ok());
    Response r = MakeAnswer("b");
    EXPECT_EQ(CacheTiers(*cache)
                  .StoreMiss(MakeRequest("z"), *Canonicalize(MakeRequest("z")),
                             std::nullopt, &r)
                  .code(),
              absl::StatusCode::kFailedPrecondition);
  }
  // A file where a directory should be.
  std::ofstream(dir.Sub("file")) << "x";
  EXPECT_FALSE(Cache::Open(dir.Sub("file"), TestOptions()).ok());
  // A corrupt database: garbage in CURRENT.
  TempDir corrupt;
  { auto cache = OpenOrDie(corrupt.path(), TestOptions()); }
  std::ofstream(corrupt.Sub("CURRENT"), std::ios::trunc) << "garbage\n";
  absl::StatusOr<std::unique_ptr<Cache>> bad =
      Cache::Open(corrupt.path(), TestOptions());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(corrupt.path()),
            absl::string_view::npos)
      << bad.status();
  // Bad options.
  Options zero = TestOptions();
  zero.max_answers_per_key = 0;
  EXPECT_EQ(Cache::Open(dir.Sub("z"), zero).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CacheTest, AbsurdTtlsAndASecondWriterAreClearNotWrong) {
  TempDir dir;
  auto cache = OpenOrDie(dir.path(), TestOptions());
  // A TTL of ten billion years is forever, not an overflow into the past.
  const Request q = MakeRequest("Keep this for a very long time");
  Store(*cache, q, MakeAnswer("kept"), absl::Hours(24.0 * 365 * 1e10));
  ASSERT_TRUE(Get(*cache, q).ok());
  EXPECT_EQ(cache->Inspect(ComputeKeys(q)->exact)->expires,
            absl::InfiniteFuture());
  // A second writer of the same directory is refused by name; a reader is
  // not.
  absl::StatusOr<std::unique_ptr<Cache>> second =
      Cache::Open(dir.path(), TestOptions());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("another process"),
            absl::string_view::npos)
      << second.status();
  Options read_only = TestOptions();
  read_only.read_only = true;
  absl::StatusOr<std::unique_ptr<Cache>> reader =
      Cache::Open(dir.path(), read_only);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_TRUE(Get(**reader, q).ok());
}

TEST(CacheTest, BucketKeepsDistinctAnswersAndServesRoundRobin) {
  TempDir dir;
  Options o = TestOptions();
  o.max_answers_per_key = 3;
  auto cache = OpenOrDie(dir.path(), o);
  Request q = MakeRequest("Tell me a joke");
  q.params.temperature = 0.9;
  int answers = 0;
  for (int i = 0; i < 3; ++i) {
    Store(*cache, q, MakeAnswer("joke " + std::to_string(i)));
    ASSERT_TRUE(
        CacheTiers(*cache).GetExact(ComputeKeys(q)->exact, &answers).ok());
    EXPECT_EQ(answers, i + 1);
  }
  std::set<std::string> seen;
  for (int i = 0; i < 6; ++i) seen.insert(Get(*cache, q)->text);
  EXPECT_EQ(seen.size(), 3u);
  // A replace (force refresh) starts the bucket over.
  Response fresh = MakeAnswer("joke new");
  ASSERT_TRUE(CacheTiers(*cache)
                  .StoreMiss(q, *Canonicalize(q), std::nullopt, &fresh,
                             /*replace=*/true)
                  .ok());
  ASSERT_TRUE(
      CacheTiers(*cache).GetExact(ComputeKeys(q)->exact, &answers).ok());
  EXPECT_EQ(answers, 1);
}

TEST(CacheTest, LedgerMatchesEntriesAfterRestart) {
  TempDir dir;
  int64_t expected_hits = 0;
  {
    auto cache = OpenOrDie(dir.path(), TestOptions());
    for (int i = 0; i < 40; ++i) {
      const std::string model = i % 2 ? "gpt-4o-mini" : "claude-sonnet-4-5";
      const std::string backend = i % 2 ? "openai" : "anthropic";
      Request q =
          MakeRequest("question " + std::to_string(i), "t", model, backend);
      Store(*cache, q, MakeAnswer("answer " + std::to_string(i)));
      for (int h = 0; h < i % 5; ++h) {
        absl::StatusOr<Response> hit = Get(*cache, q);
        ASSERT_TRUE(hit.ok());
        CacheTiers(*cache).RecordHit(q, ComputeKeys(q)->exact,
                                     CacheStatus::kExactHit, &*hit);
        ++expected_hits;
      }
      if (i == 20) {
        ASSERT_TRUE(cache->FlushStats().ok());
      }
    }
  }
  auto cache = OpenOrDie(dir.path(), TestOptions());
  SavingsReport report = *cache->Report();
  ASSERT_EQ(report.rows.size(), 2u);
  int64_t entry_hits = 0, entry_saved = 0, entries = 0;
  ASSERT_TRUE(cache
                  ->ForEachEntry([&](const EntryInfo& e) {
                    entry_hits += e.hit_count;
                    entry_saved += e.saved_nusd;
                    ++entries;
                    return true;
                  })
                  .ok());
  EXPECT_EQ(report.total.exact_hits, expected_hits);
  EXPECT_EQ(entry_hits, expected_hits);
  EXPECT_EQ(report.total.saved_nusd, entry_saved);
  EXPECT_EQ(report.total.stored, entries);
  EXPECT_EQ(report.total.requests, entries + expected_hits);
  int64_t sum = 0;
  for (const LedgerRow& row : report.rows) sum += row.saved_nusd;
  EXPECT_EQ(sum, report.total.saved_nusd);
}

TEST(CacheTest, UnpricedModelsAreReportedAsUnpriced) {
  TempDir dir;
  auto cache = OpenOrDie(dir.path(), TestOptions());
  Request q = MakeRequest("hello", "t", "llama-3.1-8b", "self-hosted");
  Response stored = Store(*cache, q, MakeAnswer("hi"));
  EXPECT_FALSE(stored.priced);
  absl::StatusOr<Response> hit = Get(*cache, q);
  CacheTiers(*cache).RecordHit(q, ComputeKeys(q)->exact, CacheStatus::kExactHit,
                               &*hit);
  EXPECT_FALSE(hit->priced);
  const LedgerRow row = cache->Report()->rows.at(0);
  EXPECT_EQ(row.unpriced_events, 2);
  EXPECT_EQ(row.saved_nusd, 0);
}

TEST(CacheTest, MissingUsageIsEstimatedAndFlagged) {
  TempDir dir;
  auto cache = OpenOrDie(dir.path(), TestOptions());
  Request q = MakeRequest(std::string(400, 'x'));
  Response answer = MakeAnswer(std::string(800, 'y'));
  answer.usage = Usage{};
  Response stored = Store(*cache, q, answer);
  EXPECT_GT(stored.dollars_spent, 0);
  const LedgerRow row = cache->Report()->rows.at(0);
  EXPECT_EQ(row.estimated_events, 1);
}

TEST(CacheTest, ExportImportRoundTripsAndRejectsTampering) {
  TempDir dir;
  std::stringstream dump;
  std::set<std::string> keys;
  {
    auto cache = OpenOrDie(dir.Sub("a"), TestOptions());
    for (int i = 0; i < 25; ++i) {
      Request q = MakeRequest("q" + std::to_string(i));
      q.params.tools_json = R"([{"type":"function","function":{"name":"f"}}])";
      Response a = MakeAnswer("a" + std::to_string(i), "tool_calls");
      a.tool_calls_json = R"([{"id":"1","type":"function"}])";
      keys.insert(Store(*cache, q, a).entry_key->ToHex());
    }
    EXPECT_EQ(*cache->Export(dump), 25);
  }
  auto copy = OpenOrDie(dir.Sub("b"), TestOptions());
  std::stringstream in(dump.str());
  EXPECT_EQ(*copy->Import(in), 25);
  std::set<std::string> copied;
  ASSERT_TRUE(copy->ForEachEntry([&](const EntryInfo& e) {
                    copied.insert(e.key.ToHex());
                    EXPECT_EQ(e.answers.at(0).tool_calls_json,
                              R"([{"id":"1","type":"function"}])");
                    return true;
                  })
                  .ok());
  EXPECT_EQ(copied, keys);
  // A line whose key does not match its request is refused.
  std::string tampered = dump.str();
  const size_t pos = tampered.find("\"q1");
  tampered.replace(pos, 3, "\"qX");
  auto third = OpenOrDie(dir.Sub("c"), TestOptions());
  std::stringstream bad(tampered);
  absl::StatusOr<int64_t> result = third->Import(bad);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("does not match"),
            absl::string_view::npos)
      << result.status();
  std::stringstream junk("{\"key\":1}\n");
  EXPECT_FALSE(third->Import(junk).ok());
}

TEST(LedgerRowTest, EveryCounterIsSummedStoredAndRead) {
  LedgerRow r;
  int64_t v = 1;
  for (int64_t* field :
       {&r.requests, &r.exact_hits, &r.semantic_hits, &r.coalesced, &r.misses,
        &r.stored, &r.upstream_errors, &r.false_hits, &r.input_tokens_served,
        &r.output_tokens_served, &r.spent_nusd, &r.saved_nusd,
        &r.embedding_nusd, &r.unpriced_events, &r.estimated_events,
        &r.upstream_us_spent, &r.upstream_us_saved}) {
    *field = v++;
  }
  LedgerRow back;
  ASSERT_TRUE(
      internal::DecodeLedgerRow(internal::EncodeLedgerRow(r), &back).ok());
  LedgerRow twice = r;
  twice.Add(r);
  v = 1;
  for (auto [got, doubled] :
       {std::pair{back.requests, twice.requests},
        {back.exact_hits, twice.exact_hits},
        {back.semantic_hits, twice.semantic_hits},
        {back.coalesced, twice.coalesced},
        {back.misses, twice.misses},
        {back.stored, twice.stored},
        {back.upstream_errors, twice.upstream_errors},
        {back.false_hits, twice.false_hits},
        {back.input_tokens_served, twice.input_tokens_served},
        {back.output_tokens_served, twice.output_tokens_served},
        {back.spent_nusd, twice.spent_nusd},
        {back.saved_nusd, twice.saved_nusd},
        {back.embedding_nusd, twice.embedding_nusd},
        {back.unpriced_events, twice.unpriced_events},
        {back.estimated_events, twice.estimated_events},
        {back.upstream_us_spent, twice.upstream_us_spent},
        {back.upstream_us_saved, twice.upstream_us_saved}}) {
    EXPECT_EQ(got, v) << "counter " << v;
    EXPECT_EQ(doubled, 2 * v) << "counter " << v;
    ++v;
  }
}

TEST(HotAnswersTest, VersionsExpiryAndByteBound) {
  internal::HotAnswers hot(16 * 64 * 1024);  // 64 KiB per shard
  const Key128 key{1, 16};                   // shard 0
  Response a = MakeAnswer("old"), out;
  const uint64_t v = hot.Version(key);
  hot.Erase(key);  // a write happened after the read began
  hot.Put(key, v, 0, a);
  EXPECT_FALSE(hot.Get(key, 0, &out)) << "a stale read must not be cached";
  hot.Put(key, hot.Version(key), 100, a);
  ASSERT_TRUE(hot.Get(key, 99, &out));
  EXPECT_EQ(out.text, "old");
  EXPECT_FALSE(hot.Get(key, 100, &out)) << "expired";
  // Over the byte budget the oldest go first; memory stays bounded.
  for (uint64_t i = 0; i < 2000; ++i) {
    const Key128 k{i, 16 * i};
    hot.Put(k, hot.Version(k), 0, MakeAnswer(std::string(600, 'x')));
  }
  EXPECT_FALSE(hot.Get(Key128{0, 0}, 0, &out));
  EXPECT_TRUE(hot.Get(Key128{1999, 16 * 1999}, 0, &out));
  EXPECT_LE(hot.bytes(), 64u * 1024 + 16 * 1024) << "segments + key map";
  EXPECT_GT(hot.items(), 40u);
  // An answer larger than a segment is not held.
  const Key128 big{7, 16 * 7};
  hot.Put(big, hot.Version(big), 0,
          MakeAnswer(std::string(hot.segment_bytes(), 'y')));
  EXPECT_FALSE(hot.Get(big, 0, &out));
}

// Eviction takes the oldest segment: answers read since they were written
// get a second chance (copied to the head, at most half a segment of them
// per eviction), the others go.
TEST(HotAnswersTest, ReadAnswersGetASecondChance) {
  internal::HotAnswers hot(16 * 64 * 1024);  // 64 KiB per shard
  ASSERT_EQ(hot.segment_bytes(), 4096u);     // 14 segments, one spare
  // Records of 1000 bytes: four to a segment, two survive an eviction.
  const Response answer = MakeAnswer(std::string(
      1000 - internal::HotAnswers::RecordBytes(MakeAnswer("")), 'x'));
  ASSERT_EQ(internal::HotAnswers::RecordBytes(answer), 1000u);
  auto put = [&](uint64_t i) {
    const Key128 k{i, 16 * i};  // all in shard 0
    hot.Put(k, hot.Version(k), 0, answer);
  };
  auto has = [&](uint64_t i) {
    Response out;
    return hot.Get(Key128{i, 16 * i}, 0, &out);
  };
  for (uint64_t i = 0; i < 40; ++i) put(i);  // segments 1-10 of 13
  const std::set<uint64_t> read = {0, 1, 4, 5, 8, 9};
  for (uint64_t i : read) ASSERT_TRUE(has(i));
  for (uint64_t i = 40; i < 70; ++i) put(i);  // evicts segments 1-6
  for (uint64_t i = 0; i < 24; ++i) EXPECT_EQ(has(i), read.count(i) > 0) << i;
  for (uint64_t i = 24; i < 70; ++i) EXPECT_TRUE(has(i)) << i;
  // A chance clears the flag: two turns of the log later, all are gone.
  for (uint64_t i = 100; i < 300; ++i) put(i);
  for (uint64_t i = 0; i < 70; ++i) EXPECT_FALSE(has(i)) << i;
  EXPECT_TRUE(has(299)) << "the newest answer is kept";
}

// Hit counts kept in the hot slots: each is taken once, and the counts of
// answers dropped (erased, expired, replaced by a record too big, evicted)
// go to the sink, except for an erase that drops them (the entry is
// deleted); none is lost or counted twice, whatever the order of
// operations. Reads give answers second chances, so survivors move.
TEST(HotAnswersTest, HitCountsAreTakenOnceAndNeverLost) {
  // Per key: hits counted and not dropped on purpose; and those in its slot
  // now, which the sink, a take or a dropping erase must move whole.
  absl::flat_hash_map<Key128, int64_t> expected, in_slot;
  absl::flat_hash_map<Key128, internal::HitCounts> moved;  // taken or sunk
  int64_t sink_calls = 0;
  internal::HotAnswers hot(
      16 * 64 * 1024, nullptr,
      [&](const Key128& key, const internal::HitCounts& counts) {
        EXPECT_EQ(counts.hits, in_slot[key]) << "a slot's counts go whole";
        in_slot[key] = 0;
        moved[key].Add(counts);
        ++sink_calls;
      });
  auto key = [](uint64_t i) { return Key128{i, 16 * i}; };  // all shard 0
  int64_t not_held = 0, dropped = 0, takes_with_counts = 0;
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  auto take = [&] {
    std::vector<std::pair<Key128, internal::HitCounts>> out;
    hot.TakeHitCounts(&out);
    absl::flat_hash_set<Key128> once;
    for (const auto& [k, counts] : out) {
      EXPECT_TRUE(once.insert(k).second) << "a key taken twice";
      EXPECT_EQ(counts.hits, in_slot[k]);
      in_slot[k] = 0;
      moved[k].Add(counts);
    }
    takes_with_counts += out.empty() ? 0 : 1;
  };
  Response out;
  for (int step = 0; step < 30000; ++step) {
    const Key128 k = key(next() % 300);
    const uint64_t op = next() % 100;
    const int64_t now = step;
    if (op < 25) {
      // Some expire within a few hundred steps.
      const int64_t expires = next() % 4 == 0 ? now + next() % 300 : 0;
      hot.Put(k, hot.Version(k), expires,
              MakeAnswer(std::string(next() % 900, 'x')));
    } else if (op < 28) {
      hot.Replace(k, 0, MakeAnswer(std::string(next() % 2000, 'y')));
    } else if (op < 30) {
      // Too big to hold: the counts go to the sink.
      hot.Replace(k, 0, MakeAnswer(std::string(hot.segment_bytes(), 'z')));
    } else if (op < 32) {
      hot.Erase(k);
    } else if (op < 33) {
      // The entry is deleted: the counts in its slot go nowhere.
      const int64_t calls = sink_calls;
      hot.Erase(k, /*drop_counts=*/true);
      EXPECT_EQ(sink_calls, calls) << "dropped counts reached the sink";
      dropped += in_slot[k];
      expected[k] -= in_slot[k];
      in_slot[k] = 0;
    } else if (op < 34) {
      take();
    } else if (op < 60) {
      hot.Get(k, now, &out);  // sets the flag that earns a second chance
    } else if (hot.CountHit(k, now, 7)) {
      expected[k] += 1;
      in_slot[k] += 1;
    } else {
      ++not_held;
    }
  }
  take();
  int64_t total = 0;
  for (const auto& [k, hits] : expected) {
    auto m = moved.find(k);
    EXPECT_EQ(m != moved.end() ? m->second.hits : 0, hits) << k.hi;
    EXPECT_EQ(m != moved.end() ? m->second.saved_nusd : 0, 7 * hits) << k.hi;
    total += hits;
  }
  for (const auto& [k, hits] : in_slot) EXPECT_EQ(hits, 0) << k.hi;
  EXPECT_GT(total, 1000);
  EXPECT_GT(sink_calls, 10) << "the sequence should drop counted answers";
  EXPECT_GT(takes_with_counts, 10);
  EXPECT_GT(not_held, 10) << "and count hits on answers not held";
  EXPECT_GT(dropped, 0) << "and delete entries with counts";
  std::vector<std::pair<Key128, internal::HitCounts>> again;
  hot.TakeHitCounts(&again);
  EXPECT_TRUE(again.empty()) << "taken counts are zeroed";
}

// The warm-up's Fill never evicts and keeps what is held.
TEST(HotAnswersTest, FillNeverEvicts) {
  internal::HotAnswers hot(16 * 64 * 1024);  // 64 KiB per shard
  const Response answer = MakeAnswer(std::string(
      1000 - internal::HotAnswers::RecordBytes(MakeAnswer("")), 'x'));
  auto key = [](uint64_t i) { return Key128{i, 16 * i}; };  // shard 0
  for (uint64_t i = 0; i < 20; ++i) {
    hot.Put(key(i), hot.Version(key(i)), 0, answer);
  }
  uint64_t filled = 20;
  while (hot.Fill(key(filled), hot.Version(key(filled)), 0, answer)) {
    ASSERT_LT(++filled, 1000u) << "Fill must report a full shard";
  }
  EXPECT_GT(filled, 40u);
  Response out;
  for (uint64_t i = 0; i < filled; ++i) EXPECT_TRUE(hot.Get(key(i), 0, &out));
  EXPECT_FALSE(hot.Get(key(filled), 0, &out));
  // A held answer is kept as it is.
  EXPECT_TRUE(hot.Fill(key(3), hot.Version(key(3)), 0, MakeAnswer("other")));
  ASSERT_TRUE(hot.Get(key(3), 0, &out));
  EXPECT_EQ(out.text, answer.text);
  // Other shards still have room.
  EXPECT_TRUE(hot.Fill(Key128{1, 1}, hot.Version(Key128{1, 1}), 0, answer));
}

// Many tiny answers: the key map's share grows and the segments' shrinks,
// so the shard stays near its capacity.
TEST(HotAnswersTest, TinyAnswersStayWithinCapacity) {
  internal::HotAnswers hot(16 * 256 * 1024);  // 256 KiB per shard
  for (uint64_t i = 0; i < 50000; ++i) {
    const Key128 k{i, 16 * i};  // shard 0
    hot.Put(k, hot.Version(k), 0, MakeAnswer("ok"));
  }
  EXPECT_LE(hot.bytes(), 256u * 1024);
  EXPECT_GT(hot.items(), 500u);
}

// An answer larger than half a segment, put while every held answer has
// been read, costs one eviction, not the shard.
TEST(HotAnswersTest, ALargeAnswerDoesNotFlushTheShard) {
  internal::HotAnswers hot(16 * 64 * 1024);  // 64 KiB per shard, 4 KiB segments
  const Response small = MakeAnswer(std::string(
      500 - internal::HotAnswers::RecordBytes(MakeAnswer("")), 'x'));
  auto key = [](uint64_t i) { return Key128{i, 16 * i}; };
  // As many as fit (found on a twin) before the first eviction.
  uint64_t n = 0;
  {
    internal::HotAnswers twin(16 * 64 * 1024);
    while (twin.items() == n) {
      twin.Put(key(n), twin.Version(key(n)), 0, small);
      ++n;
    }
    n -= 1;
  }
  ASSERT_GT(n, 80u);
  for (uint64_t i = 0; i < n; ++i)
    hot.Put(key(i), hot.Version(key(i)), 0, small);
  Response out;
  for (uint64_t i = 0; i < n; ++i) ASSERT_TRUE(hot.Get(key(i), 0, &out)) << i;
  const Key128 big{5000, 16 * 5000};
  hot.Put(big, hot.Version(big), 0, MakeAnswer(std::string(3000, 'y')));
  EXPECT_TRUE(hot.Get(big, 0, &out));
  int kept = 0;
  for (uint64_t i = 0; i < n; ++i) kept += hot.Get(key(i), 0, &out) ? 1 : 0;
  EXPECT_GE(kept, static_cast<int>(n) - 14)
      << "one segment's worth may go, not the shard";
}

TEST(LedgerGrowthTest, UnpricedModelsCanShareOneRow) {
  // Issue 14, defect 9: every model string a client sent made a ledger row.
  TempDir dir;
  Options options;
  options.pool_unpriced_models = true;
  options.stats_flush_interval = absl::InfiniteDuration();
  auto cache = *Cache::Open(dir.path(), options);
  CachedClient client(*cache, [](const Request& r) -> absl::StatusOr<Response> {
    if (r.model.rfind("probe-", 0) == 0) {
      return absl::NotFoundError("no such model");
    }
    return MakeAnswer("answer");
  });
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(
        client.Complete(MakeRequest("hi", "t", "probe-" + std::to_string(i)))
            .ok());
  }
  ASSERT_TRUE(client.Complete(MakeRequest("hi", "t", "my-local-model")).ok());
  ASSERT_TRUE(client.Complete(MakeRequest("hi", "t", "my-local-model")).ok());
  ASSERT_TRUE(client.Complete(MakeRequest("hi", "t", "gpt-4o-mini")).ok());
  ASSERT_TRUE(cache->FlushStats().ok());
  absl::StatusOr<SavingsReport> report = cache->Report();
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->rows.size(), 2u);
  for (const LedgerRow& row : report->rows) {
    if (row.model == kPooledUnpricedModel) {
      EXPECT_EQ(row.requests, 52);
      EXPECT_EQ(row.upstream_errors, 50);
      EXPECT_EQ(row.exact_hits, 1);
    } else {
      EXPECT_EQ(row.model, "gpt-4o-mini");
      EXPECT_EQ(row.requests, 1);
    }
  }
  EXPECT_EQ(report->total.requests, 53);
  // The stored entry keeps its real model: another model never shares it.
  EXPECT_EQ(
      client.Complete(MakeRequest("hi", "t", "other-local"))->cache_status,
      CacheStatus::kMiss);
}

}  // namespace
}  // namespace promptcache
