// A ledger row that cannot be read (an older build let a NUL into a model
// name, which split its key into four parts) must not stop the cache from
// opening: it is counted, left on disk and kept out of reports, and every
// entry and every other row stays readable. Issue 14, defect 1.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "promptcache/cached_client.h"
#include "raw_store.h"
#include "rocksdb/db.h"
#include "store/entry_codec.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

// Opens the cache's RocksDB directly (as an older build would) and hands
// `edit` the database with its "ledger" and "meta" families.
template <typename Edit>
void EditRaw(const std::string& path, Edit edit) {
  rocksdb::DBOptions db_options;
  const std::vector<rocksdb::ColumnFamilyDescriptor> descriptors =
      testing::RawFamilies(path);
  ASSERT_FALSE(descriptors.empty());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(
      rocksdb::DB::Open(db_options, path, descriptors, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* ledger = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  for (size_t i = 0; i < descriptors.size(); ++i) {
    if (descriptors[i].name == "ledger") ledger = handles[i];
    if (descriptors[i].name == "default") meta = handles[i];
  }
  ASSERT_NE(ledger, nullptr);
  ASSERT_NE(meta, nullptr);
  edit(db.get(), ledger, meta);
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }
  ASSERT_TRUE(db->Close().ok());
}

// Every ledger key as stored.
std::vector<std::string> RawLedgerKeys(const std::string& path) {
  std::vector<std::string> keys;
  EditRaw(path, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* ledger,
                    rocksdb::ColumnFamilyHandle*) {
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), ledger));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      keys.push_back(it->key().ToString());
    }
  });
  return keys;
}

// Writes `keys` straight into the ledger family, as an older build could
// have: each value a copy of a real row's, or garbage.
void AddRawLedgerRows(const std::string& path,
                      const std::vector<std::string>& keys, bool valid_values) {
  EditRaw(path, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* ledger,
                    rocksdb::ColumnFamilyHandle*) {
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
  });
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

TEST(LedgerRecoveryTest, ACreateCutShortIsFinishedNotRefused) {
  // A kill while RocksDB creates the database: only its default family (it
  // adds ours one by one), or a MANIFEST without CURRENT. Both used to fail
  // every open. A database with data stays refused.
  for (bool without_current : {false, true}) {
    TempDir dir;
    {
      rocksdb::Options options;
      options.create_if_missing = true;
      rocksdb::DB* raw = nullptr;
      ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), &raw).ok());
      ASSERT_TRUE(raw->Close().ok());
      delete raw;
    }
    if (without_current) {
      std::filesystem::remove(std::filesystem::path(dir.path()) / "CURRENT");
    }
    absl::StatusOr<std::unique_ptr<Cache>> cache =
        Cache::Open(dir.path(), Options());
    ASSERT_TRUE(cache.ok()) << cache.status();
    CachedClient client(**cache, [](const Request& r) {
      return absl::StatusOr<Response>(
          MakeAnswer("answer to " + r.messages.back().content));
    });
    ASSERT_TRUE(client.Complete(MakeRequest("works now")).ok());
    EXPECT_EQ(client.Complete(MakeRequest("works now"))->cache_status,
              CacheStatus::kExactHit);
  }
  TempDir foreign;
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, foreign.path(), &raw).ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), "someone's", "data").ok());
    ASSERT_TRUE(raw->Close().ok());
    delete raw;
  }
  absl::StatusOr<std::unique_ptr<Cache>> refused =
      Cache::Open(foreign.path(), Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
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

// Inputs the fuzzers (fuzz/) found to crash a decoder, kept as tests.
TEST(StoreCodecFuzzRegressionTest, ZeroDimensionVector) {
  // store_codecs_fuzzer: memcpy from a null pointer for a 0-float vector.
  const std::string input("\x01\x4c\x00\x00\x00\x00\x00\x00\x00", 9);
  internal::VectorRecord record;
  EXPECT_FALSE(internal::DecodeVector(input, &record).ok());
  internal::VectorRecord empty;
  ASSERT_TRUE(
      internal::DecodeVector(internal::EncodeVector(empty), &record).ok());
  EXPECT_TRUE(record.vector.empty());
}

TEST(LedgerKeyTest, FieldsWithAnyBytesNeverMerge) {
  // Schema 1 joined the fields with NUL: these two triples had one key.
  const std::string a =
      internal::LedgerKey("a", "openai", std::string("m\0x", 3));
  const std::string b =
      internal::LedgerKey(std::string("a\0openai", 8), "m", "x");
  EXPECT_NE(a, b);
  for (const auto& [key, ns, backend, model] : std::vector<
           std::tuple<std::string, std::string, std::string, std::string>>{
           {a, "a", "openai", std::string("m\0x", 3)},
           {b, std::string("a\0openai", 8), "m", "x"},
           {internal::LedgerKey("", "", ""), "", "", ""}}) {
    LedgerRow row;
    ASSERT_TRUE(internal::SplitLedgerKey(key, &row).ok());
    EXPECT_EQ(row.ns, ns);
    EXPECT_EQ(row.backend, backend);
    EXPECT_EQ(row.model, model);
    EXPECT_FALSE(internal::IsLegacyLedgerKey(key));
  }
  // A truncated key is an error, not a row with made-up fields.
  LedgerRow row;
  EXPECT_FALSE(internal::SplitLedgerKey(a.substr(0, 3), &row).ok());
  EXPECT_FALSE(internal::SplitLedgerKey(std::string("\x01\x7f", 2), &row).ok());
  // The old form still reads (semantic hits recorded by older builds).
  ASSERT_TRUE(internal::SplitLedgerKey(std::string("n\0b\0m", 5), &row).ok());
  EXPECT_EQ(row.model, "m");
}

TEST(LedgerRecoveryTest, SchemaOneLedgerKeysAreRewrittenOnOpen) {
  TempDir dir;
  Options options;
  options.stats_flush_interval = absl::InfiniteDuration();
  std::vector<LedgerRow> before;
  {
    auto cache = *Cache::Open(dir.path(), options);
    CachedClient client(*cache, [](const Request& r) {
      return absl::StatusOr<Response>(
          MakeAnswer("answer to " + r.messages.back().content));
    });
    ASSERT_TRUE(client.Complete(MakeRequest("first", "a", "m1")).ok());
    ASSERT_TRUE(client.Complete(MakeRequest("first", "a", "m1")).ok());
    ASSERT_TRUE(client.Complete(MakeRequest("second", "b", "m2")).ok());
    ASSERT_TRUE(cache->FlushStats().ok());
    before = cache->Report()->rows;
  }
  ASSERT_EQ(before.size(), 2u);
  // Turn the database into what a schema-1 build left.
  EditRaw(dir.path(), [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* ledger,
                         rocksdb::ColumnFamilyHandle* meta) {
    std::vector<std::pair<std::string, std::string>> rows;
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), ledger));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rows.emplace_back(it->key().ToString(), it->value().ToString());
    }
    for (const auto& [key, value] : rows) {
      LedgerRow row;
      ASSERT_TRUE(internal::SplitLedgerKey(key, &row).ok());
      ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), ledger, key).ok());
      const std::string legacy = row.ns + std::string(1, '\0') + row.backend +
                                 std::string(1, '\0') + row.model;
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), ledger, legacy, value).ok());
    }
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), meta, "schema_version", "1").ok());
  });
  for (const std::string& key : RawLedgerKeys(dir.path())) {
    ASSERT_TRUE(internal::IsLegacyLedgerKey(key));
  }
  // A read-only open reads the old keys as they are and writes nothing.
  {
    Options read_only = options;
    read_only.read_only = true;
    auto cache = Cache::Open(dir.path(), read_only);
    ASSERT_TRUE(cache.ok()) << cache.status();
    EXPECT_EQ((*cache)->Report()->rows.size(), before.size());
  }
  for (const std::string& key : RawLedgerKeys(dir.path())) {
    EXPECT_TRUE(internal::IsLegacyLedgerKey(key));
  }
  {
    auto cache = Cache::Open(dir.path(), options);
    ASSERT_TRUE(cache.ok()) << cache.status();
    EXPECT_EQ((*cache)->Stats()->schema_version, kSchemaVersion);
    EXPECT_EQ((*cache)->Stats()->unreadable_ledger_rows, 0);
    std::vector<LedgerRow> after = (*cache)->Report()->rows;
    ASSERT_EQ(after.size(), before.size());
    for (size_t i = 0; i < after.size(); ++i) {
      EXPECT_EQ(after[i].model, before[i].model);
      EXPECT_EQ(after[i].requests, before[i].requests);
      EXPECT_EQ(after[i].exact_hits, before[i].exact_hits);
      EXPECT_EQ(after[i].spent_nusd, before[i].spent_nusd);
    }
    // New traffic lands on the same rows, not beside them.
    CachedClient client(**cache, nullptr);
    ASSERT_EQ(client.Complete(MakeRequest("first", "a", "m1"))->cache_status,
              CacheStatus::kExactHit);
    ASSERT_TRUE((*cache)->FlushStats().ok());
    EXPECT_EQ((*cache)->Report()->rows.size(), before.size());
  }
  const std::vector<std::string> keys = RawLedgerKeys(dir.path());
  EXPECT_EQ(keys.size(), before.size());
  for (const std::string& key : keys) {
    EXPECT_FALSE(internal::IsLegacyLedgerKey(key));
  }
}

TEST(LedgerRecoveryTest, ANewerSchemaIsRefusedByName) {
  TempDir dir;
  { ASSERT_TRUE(Cache::Open(dir.path(), Options()).ok()); }
  EditRaw(dir.path(), [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle*,
                         rocksdb::ColumnFamilyHandle* meta) {
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), meta, "schema_version", "9").ok());
  });
  auto cache = Cache::Open(dir.path(), Options());
  ASSERT_FALSE(cache.ok());
  EXPECT_EQ(cache.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(cache.status().message().find("schema version 9"),
            std::string::npos);
}

}  // namespace
}  // namespace promptcache
