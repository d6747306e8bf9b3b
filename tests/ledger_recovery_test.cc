// A ledger row that cannot be read (an older build let a NUL into a model
// name, which split its key into four parts) must not stop the cache from
// opening: it is counted, left on disk and kept out of reports, and every
// entry and every other row stays readable. Issue 14, defect 1.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "promptcache/cached_client.h"
#include "rocksdb/db.h"
#include "store/entry_stats_merge.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

// Writes `extra` rows straight into the ledger family, as an older build
// could have: each value a copy of a real row's.
void AddRawLedgerRows(const std::string& path,
                      const std::vector<std::string>& keys, bool valid_values) {
  rocksdb::DBOptions db_options;
  std::vector<std::string> families;
  ASSERT_TRUE(
      rocksdb::DB::ListColumnFamilies(db_options, path, &families).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : families) {
    rocksdb::ColumnFamilyOptions cf;
    // The counters' family holds merge operands: keep its operator.
    if (name == "entry_stats") {
      cf.merge_operator = internal::NewEntryStatsMergeOperator();
    }
    descriptors.push_back({name, cf});
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(
      rocksdb::DB::Open(db_options, path, descriptors, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* ledger = nullptr;
  for (size_t i = 0; i < families.size(); ++i) {
    if (families[i] == "ledger") ledger = handles[i];
  }
  ASSERT_NE(ledger, nullptr);
  std::string value;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), ledger));
    it->SeekToFirst();
    ASSERT_TRUE(it->Valid());
    value = valid_values ? it->value().ToString() : "not a ledger row";
  }
  for (const std::string& key : keys) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), ledger, key, value).ok());
  }
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }
  ASSERT_TRUE(db->Close().ok());
}

TEST(LedgerRecoveryTest, UnreadableRowsAreCountedNotFatal) {
  TempDir dir;
  Options options;
  options.stats_flush_interval = absl::InfiniteDuration();
  int64_t rows_before = 0;
  {
    auto cache = *Cache::Open(dir.path(), options);
    CachedClient client(*cache, [](const Request& r) {
      return absl::StatusOr<Response>(
          MakeAnswer("answer to " + r.messages.back().content));
    });
    ASSERT_TRUE(client.Complete(MakeRequest("first", "a", "m1")).ok());
    ASSERT_TRUE(client.Complete(MakeRequest("second", "b", "m2")).ok());
    ASSERT_TRUE(cache->FlushStats().ok());
    rows_before = static_cast<int64_t>(cache->Report()->rows.size());
    EXPECT_EQ(cache->Stats()->unreadable_ledger_rows, 0);
  }
  // "a" / "openai" / "m\0x": four parts. And a key that splits well over a
  // value that does not decode.
  AddRawLedgerRows(dir.path(), {std::string("a\0openai\0m\0x", 12)}, true);
  AddRawLedgerRows(dir.path(), {std::string("c\0openai\0m3", 11)}, false);

  absl::StatusOr<std::unique_ptr<Cache>> cache =
      Cache::Open(dir.path(), options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ((*cache)->Stats()->unreadable_ledger_rows, 2);
  EXPECT_EQ(static_cast<int64_t>((*cache)->Report()->rows.size()), rows_before);
  EXPECT_EQ((*cache)->Stats()->entries, 2);
  CachedClient client(**cache, nullptr);
  EXPECT_EQ(client.Complete(MakeRequest("first", "a", "m1"))->cache_status,
            CacheStatus::kExactHit);
  // Read-only opens (every CLI report) work too.
  cache->reset();
  options.read_only = true;
  cache = Cache::Open(dir.path(), options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ((*cache)->Stats()->unreadable_ledger_rows, 2);
}

TEST(LedgerRecoveryTest, AMissingCurrentFileIsAnErrorNotAWipe) {
  // Issue 14, defect 6: Open used to create a new database over the files
  // (RocksDB then deleted them).
  TempDir dir;
  Options options;
  {
    auto cache = *Cache::Open(dir.path(), options);
    CachedClient client(*cache, [](const Request& r) {
      return absl::StatusOr<Response>(
          MakeAnswer("answer to " + r.messages.back().content));
    });
    ASSERT_TRUE(client.Complete(MakeRequest("keep me")).ok());
  }
  const std::filesystem::path current =
      std::filesystem::path(dir.path()) / "CURRENT";
  std::string saved;
  {
    std::ifstream in(current);
    std::getline(in, saved);
  }
  ASSERT_FALSE(saved.empty());
  std::filesystem::remove(current);
  size_t files_before = 0;
  for (auto& f : std::filesystem::directory_iterator(dir.path())) {
    (void)f;
    ++files_before;
  }
  absl::StatusOr<std::unique_ptr<Cache>> cache =
      Cache::Open(dir.path(), options);
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(cache.status().message().find("no CURRENT"), std::string::npos);
  size_t files_after = 0;
  for (auto& f : std::filesystem::directory_iterator(dir.path())) {
    (void)f;
    ++files_after;
  }
  EXPECT_EQ(files_after, files_before);
  // Restored, the cache is whole again.
  std::ofstream(current) << saved << "\n";
  cache = Cache::Open(dir.path(), options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  CachedClient client(**cache, nullptr);
  EXPECT_EQ(client.Complete(MakeRequest("keep me"))->cache_status,
            CacheStatus::kExactHit);
}

}  // namespace
}  // namespace promptcache
