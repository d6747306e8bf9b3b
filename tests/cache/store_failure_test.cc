// The cache's own failures never fail a call (cache.h, "Failures"): a store
// that cannot be read makes a miss whose answer replaces the unreadable
// entry; a failing embedder leaves the call to the exact tier. Each is
// counted. Issue 14, defects 7 and 10; issue 12, item 2.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "promptcache/builtin_embedder.h"
#include "promptcache/cache_tiers.h"
#include "promptcache/cached_client.h"
#include "raw_store.h"
#include "rocksdb/db.h"
#include "rocksdb/metadata.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

// The built-in embedder, until told to fail in one of the ways a user's
// embedder can.
class FlakyEmbedder : public Embedder {
 public:
  enum class Mode { kWorks, kError, kThrows, kNaN, kWrongSize };
  std::string name() const override { return inner_.name(); }
  int dimension() const override { return inner_.dimension(); }
  absl::Status Embed(absl::Span<const std::string> texts,
                     std::vector<float>* out) const override {
    switch (mode.load()) {
      case Mode::kWorks:
        return inner_.Embed(texts, out);
      case Mode::kError:
        return absl::UnavailableError("embedding server down");
      case Mode::kThrows:
        throw std::runtime_error("embedder blew up");
      case Mode::kNaN: {
        absl::Status s = inner_.Embed(texts, out);
        (*out)[0] = std::numeric_limits<float>::quiet_NaN();
        return s;
      }
      case Mode::kWrongSize:
        out->assign(3, 0.5f);
        return absl::OkStatus();
    }
    return absl::InternalError("unreachable");
  }
  mutable std::atomic<Mode> mode{Mode::kWorks};

 private:
  BuiltinEmbedder inner_;
};

ModelClient Upstream(std::atomic<int>* calls) {
  return [calls](const Request& r) {
    calls->fetch_add(1);
    return absl::StatusOr<Response>(
        MakeAnswer("answer to " + r.messages.back().content));
  };
}

TEST(StoreFailureTest, AFailingEmbedderLeavesCallsToTheExactTier) {
  TempDir dir;
  auto embedder = std::make_shared<FlakyEmbedder>();
  Options options;
  options.embedder = embedder;
  auto cache = *Cache::Open(dir.path(), options);
  std::atomic<int> calls{0};
  CachedClient client(*cache, Upstream(&calls));
  int64_t expected_errors = 0;
  for (FlakyEmbedder::Mode mode :
       {FlakyEmbedder::Mode::kError, FlakyEmbedder::Mode::kThrows,
        FlakyEmbedder::Mode::kNaN, FlakyEmbedder::Mode::kWrongSize}) {
    embedder->mode = mode;
    const std::string question = "How do I rotate my keys, case " +
                                 std::to_string(static_cast<int>(mode));
    absl::StatusOr<Response> miss = client.Complete(MakeRequest(question));
    ASSERT_TRUE(miss.ok()) << miss.status();
    EXPECT_EQ(miss->cache_status, CacheStatus::kMiss);
    EXPECT_TRUE(miss->stored);  // for the exact tier
    absl::StatusOr<Response> again = client.Complete(MakeRequest(question));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->cache_status, CacheStatus::kExactHit);
    // The lookup embedded once; the store did not ask the failing embedder
    // again.
    expected_errors += 1;
    EXPECT_EQ(cache->Stats()->embedder_errors, expected_errors);
  }
  EXPECT_EQ(calls.load(), 4);
  EXPECT_THAT(cache->Stats()->last_error, ::testing::HasSubstr("returned 3"));
  // Working again, the tier serves rewordings of what it stores from now on.
  embedder->mode = FlakyEmbedder::Mode::kWorks;
  ASSERT_TRUE(
      client.Complete(MakeRequest("What is the capital city of Canada?")).ok());
  absl::StatusOr<Response> near =
      client.Complete(MakeRequest("what is the capital city of canada"));
  ASSERT_TRUE(near.ok());
  EXPECT_NE(near->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(cache->Stats()->lookup_errors, 0);
  EXPECT_EQ(cache->Stats()->store_errors, 0);
}

// Flips bytes in the data blocks of the "entries" family's table files.
void CorruptEntryTables(const std::string& path) {
  const std::vector<rocksdb::ColumnFamilyDescriptor> descriptors =
      testing::RawFamilies(path);
  ASSERT_FALSE(descriptors.empty());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path,
                                           descriptors, &handles, &raw)
                  .ok());
  std::vector<rocksdb::LiveFileMetaData> files;
  raw->GetLiveFilesMetaData(&files);
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    ASSERT_TRUE(raw->DestroyColumnFamilyHandle(h).ok());
  }
  delete raw;
  int corrupted = 0;
  for (const rocksdb::LiveFileMetaData& file : files) {
    if (file.column_family_name != "entries") continue;
    const std::string name = path + "/" + file.relative_filename;
    std::fstream f(name, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f.is_open()) << name;
    // Data blocks come first; the footer and index at the end stay whole.
    for (int offset = 16; offset < 160; offset += 8) {
      f.seekp(offset);
      f.put('\x5a');
    }
    ++corrupted;
  }
  ASSERT_GT(corrupted, 0);
}

TEST(StoreFailureTest, ACorruptBlockIsAMissAndTheAnswerReplacesIt) {
  TempDir dir;
  Options options;
  std::atomic<int> calls{0};
  const std::string question = "Which port does the proxy listen on?";
  {
    auto cache = *Cache::Open(dir.path(), options);
    CachedClient client(*cache, Upstream(&calls));
    ASSERT_TRUE(client.Complete(MakeRequest(question)).ok());
  }  // Closed: the entry is in a table file now.
  CorruptEntryTables(dir.path());

  auto cache = Cache::Open(dir.path(), options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  // A direct read reports the damage...
  absl::StatusOr<CanonicalizedRequest> canonical =
      Canonicalize(MakeRequest(question), options.canonical);
  ASSERT_TRUE(canonical.ok());
  absl::StatusOr<Response> direct =
      CacheTiers(**cache).GetExact(canonical->keys.exact);
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.status().code(), absl::StatusCode::kDataLoss);
  // ...a call goes upstream instead of failing, and its answer replaces the
  // unreadable entry.
  CachedClient client(**cache, Upstream(&calls));
  absl::StatusOr<Response> miss = client.Complete(MakeRequest(question));
  ASSERT_TRUE(miss.ok()) << miss.status();
  absl::StatusOr<CacheStats> stats = (*cache)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(miss->cache_status, CacheStatus::kMiss) << stats->last_error;
  EXPECT_TRUE(miss->stored) << stats->last_error;
  EXPECT_EQ(calls.load(), 2);
  EXPECT_THAT(stats->scan_error, ::testing::HasSubstr("orrupt"));
  EXPECT_GE(stats->lookup_errors, 2);  // the direct read, the call's lookup
  EXPECT_THAT(stats->last_error, ::testing::HasSubstr("orrupt"));
  absl::StatusOr<Response> hit = client.Complete(MakeRequest(question));
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_EQ(hit->cache_status, CacheStatus::kExactHit)
      << (*cache)->Stats()->last_error;
  EXPECT_EQ(hit->text, "answer to " + question);
  EXPECT_EQ(calls.load(), 2);
}

TEST(StoreFailureTest, VerifyFindsTheDamageAndRepairMendsIt) {
  TempDir dir;
  Options options;
  options.embedder = std::make_shared<BuiltinEmbedder>();
  std::atomic<int> calls{0};
  const std::vector<std::string> questions = {"How do I reset my password?",
                                              "What is the refund policy?",
                                              "Where is my order?"};
  int64_t requests_before = 0;
  {
    auto cache = *Cache::Open(dir.path(), options);
    CachedClient client(*cache, Upstream(&calls));
    for (const std::string& q : questions) {
      ASSERT_TRUE(client.Complete(MakeRequest(q)).ok());
    }
    ASSERT_TRUE(cache->FlushStats().ok());
    requests_before = cache->Report()->total.requests;
  }
  absl::StatusOr<VerifyReport> whole = Cache::Verify(dir.path());
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_TRUE(whole->ok()) << whole->problems[0];
  EXPECT_EQ(whole->entries, 3);
  EXPECT_EQ(whole->vectors, 3);
  EXPECT_GT(whole->ledger_rows, 0);

  CorruptEntryTables(dir.path());
  absl::StatusOr<VerifyReport> damaged = Cache::Verify(dir.path());
  ASSERT_TRUE(damaged.ok()) << damaged.status();
  ASSERT_FALSE(damaged->ok());
  EXPECT_THAT(damaged->problems[0], ::testing::HasSubstr("orrupt"));

  absl::StatusOr<VerifyReport> repaired = Cache::Repair(dir.path(), options);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_TRUE(repaired->ok()) << repaired->problems[0];
  // The damaged table's entries are gone (moved to lost/), and with them
  // their vectors and counters; the money already spent is still counted.
  EXPECT_EQ(repaired->orphan_vectors, 0);
  EXPECT_EQ(repaired->orphan_stats, 0);
  EXPECT_TRUE(std::filesystem::exists(dir.Sub("lost")));
  auto cache = Cache::Open(dir.path(), options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ((*cache)->Report()->total.requests, requests_before);
  EXPECT_EQ((*cache)->Stats()->scan_error, "");
  CachedClient client(**cache, Upstream(&calls));
  for (const std::string& q : questions) {
    absl::StatusOr<Response> again = client.Complete(MakeRequest(q));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->text, "answer to " + q);
  }
  EXPECT_EQ((*cache)->Stats()->lookup_errors, 0);
}

// In a child process: stores the answers to question(0..n-1), every call
// acknowledged, then dies without closing or flushing (the entries only in
// the write-ahead log).
void StoreThenCrash(const std::string& path, int n,
                    const std::function<std::string(int)>& question) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::atomic<int> calls{0};
    auto cache = Cache::Open(path, Options());
    if (!cache.ok()) _exit(2);
    CachedClient client(**cache, Upstream(&calls));
    for (int i = 0; i < n; ++i) {
      if (!client.Complete(MakeRequest(question(i))).ok()) _exit(3);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(StoreFailureTest, RepairOfACacheKilledBeforeItsFirstFlushOpensAfter) {
  // RepairDB re-creates only the families it finds tables of: a cache whose
  // entries are all in its write-ahead log comes back without them, and the
  // repair must create them again, or the cache would never open.
  TempDir dir;
  auto question = [](int i) { return "question " + std::to_string(i); };
  ASSERT_NO_FATAL_FAILURE(StoreThenCrash(dir.path(), 20, question));
  Options options;
  absl::StatusOr<VerifyReport> repaired = Cache::Repair(dir.path(), options);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  auto cache = Cache::Open(dir.path(), options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  std::atomic<int> calls{0};
  CachedClient client(**cache, Upstream(&calls));
  ASSERT_TRUE(client.Complete(MakeRequest("question 3")).ok());
  ASSERT_TRUE(client.Complete(MakeRequest("question 3")).ok());
  EXPECT_LE(calls.load(), 1);  // stored again at the latest, then a hit
}

TEST(StoreFailureTest, ADamagedWriteAheadLogIsReplayedToTheDamageAndReported) {
  // Issue 14, defect 6: a damaged log silently dropped acknowledged writes.
  TempDir dir;
  constexpr int kCalls = 200;
  auto question = [](int i) { return "question number " + std::to_string(i); };
  ASSERT_NO_FATAL_FAILURE(StoreThenCrash(dir.path(), kCalls, question));
  int damaged = 0;
  for (const auto& file : std::filesystem::directory_iterator(dir.path())) {
    if (file.path().extension() != ".log") continue;
    const auto size = std::filesystem::file_size(file.path());
    if (size < 4096) continue;
    std::fstream f(file.path(),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    for (int i = 0; i < 64; ++i) f.put('\x33');
    ++damaged;
  }
  ASSERT_EQ(damaged, 1);

  auto cache = Cache::Open(dir.path(), Options());
  ASSERT_TRUE(cache.ok()) << cache.status();
  absl::StatusOr<CacheStats> stats = (*cache)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->wal_bytes_dropped, 0);
  EXPECT_THAT(stats->wal_recovery, ::testing::HasSubstr("dropping"));
  // A prefix of the calls survives, each entry with its ledger row.
  EXPECT_GT(stats->entries, 0);
  EXPECT_LT(stats->entries, kCalls);
  absl::StatusOr<SavingsReport> report = (*cache)->Report();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->total.stored, stats->entries);
  EXPECT_EQ(report->total.requests, stats->entries);
  std::atomic<int> calls{0};
  CachedClient client(**cache, Upstream(&calls));
  for (int i = 0; i < kCalls; ++i) {
    const bool kept = i < stats->entries;
    EXPECT_EQ(client.Complete(MakeRequest(question(i)))->cache_status,
              kept ? CacheStatus::kExactHit : CacheStatus::kMiss)
        << i;
  }
  // A clean reopen reports nothing lost.
  cache->reset();
  cache = Cache::Open(dir.path(), Options());
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ((*cache)->Stats()->wal_bytes_dropped, 0);
}

}  // namespace
}  // namespace promptcache
