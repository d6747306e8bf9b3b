// RocksStore on disk, through the Store interface the cache uses: point
// reads, atomic batches, views, ordered iteration, merges of hit counters,
// read-only opens, and the opens it refuses without changing anything.
#include "store/rocks_store.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "raw_store.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "store/entry_codec.h"
#include "test_util.h"

namespace promptcache::internal {
namespace {

using testing::OpenTestStore;
using testing::TempDir;

std::vector<std::string> Keys(Store& store, Family family,
                              const StoreReadOptions& read = {}) {
  std::vector<std::string> out;
  std::unique_ptr<StoreIterator> it = store.NewIterator(family, read);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    out.emplace_back(it->key());
  }
  EXPECT_TRUE(it->status().ok()) << it->status();
  return out;
}

TEST(RocksStoreTest, ReadsWhatABatchWroteAndNothingOfAnUnwrittenOne) {
  TempDir dir;
  std::unique_ptr<RocksStore> store = OpenTestStore(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->created());
  for (int f = 0; f < kFamilyCount; ++f) {
    EXPECT_TRUE(store->Has(static_cast<Family>(f))) << f;
  }
  std::unique_ptr<StoreBatch> batch = store->NewBatch();
  batch->Put(Family::kEntries, "k1", "entry one");
  batch->Put(Family::kLedger, "k1", "a ledger row");
  batch->Put(Family::kEntries, "k2", "entry two");
  batch->Delete(Family::kEntries, "k2");
  EXPECT_EQ(batch->Count(), 4);
  std::unique_ptr<StoreBatch> unwritten = store->NewBatch();
  unwritten->Put(Family::kEntries, "k3", "never written");
  ASSERT_TRUE(store->Write(batch.get()).ok());

  std::string value;
  ASSERT_TRUE(*store->Get(Family::kEntries, "k1", &value));
  EXPECT_EQ(value, "entry one");
  // Families are apart: the same key holds another record in each.
  ASSERT_TRUE(*store->Get(Family::kLedger, "k1", &value));
  EXPECT_EQ(value, "a ledger row");
  EXPECT_FALSE(*store->Get(Family::kVectors, "k1", &value));
  EXPECT_FALSE(*store->Get(Family::kEntries, "k2", &value));
  EXPECT_FALSE(*store->Get(Family::kEntries, "k3", &value));
  std::string seen;
  absl::StatusOr<bool> read =
      store->Read(Family::kEntries, "k1",
                  [&](absl::string_view v) { seen = std::string(v); });
  ASSERT_TRUE(read.ok() && *read);
  EXPECT_EQ(seen, "entry one");
  read = store->Read(Family::kEntries, "absent",
                     [&](absl::string_view) { ADD_FAILURE() << "called"; });
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(*read);
}

TEST(RocksStoreTest, IteratesInKeyOrderFromASeekAndAViewSeesNoLaterWrite) {
  TempDir dir;
  std::unique_ptr<RocksStore> store = OpenTestStore(dir.path());
  ASSERT_NE(store, nullptr);
  std::unique_ptr<StoreBatch> batch = store->NewBatch();
  for (const char* key : {"b2", "a1", "c3", "b1"}) {
    batch->Put(Family::kMeta, key, key);
  }
  ASSERT_TRUE(store->Write(batch.get()).ok());
  EXPECT_EQ(Keys(*store, Family::kMeta),
            (std::vector<std::string>{"a1", "b1", "b2", "c3"}));
  std::unique_ptr<StoreIterator> it = store->NewIterator(Family::kMeta);
  it->Seek("b");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "b1");
  EXPECT_EQ(it->value(), "b1");

  std::unique_ptr<StoreView> view = store->NewView();
  std::unique_ptr<StoreBatch> later = store->NewBatch();
  later->Delete(Family::kMeta, "a1");
  later->Put(Family::kMeta, "d4", "d4");
  ASSERT_TRUE(store->Write(later.get()).ok());
  StoreReadOptions in_view;
  in_view.view = view.get();
  EXPECT_EQ(Keys(*store, Family::kMeta, in_view),
            (std::vector<std::string>{"a1", "b1", "b2", "c3"}));
  std::string value;
  EXPECT_TRUE(*store->Get(Family::kMeta, "a1", &value, in_view));
  EXPECT_FALSE(*store->Get(Family::kMeta, "a1", &value));
  EXPECT_EQ(Keys(*store, Family::kMeta),
            (std::vector<std::string>{"b1", "b2", "c3", "d4"}));
}

TEST(RocksStoreTest, MergesAddHitsToAnEntrysCountersAcrossReopen) {
  TempDir dir;
  {
    std::unique_ptr<RocksStore> store = OpenTestStore(dir.path());
    ASSERT_NE(store, nullptr);
    EntryStats stats;
    stats.hits = 2;
    stats.bytes = 900;
    std::unique_ptr<StoreBatch> batch = store->NewBatch();
    batch->Put(Family::kEntryStats, "e", EncodeEntryStats(stats));
    ASSERT_TRUE(store->Write(batch.get()).ok());
    for (int i = 0; i < 3; ++i) {
      EntryStatsDelta delta;
      delta.hits = 5;
      delta.saved_nusd = 10;
      delta.last_hit_us = 100 + i;
      std::unique_ptr<StoreBatch> hit = store->NewBatch();
      hit->Merge(Family::kEntryStats, "e", EncodeEntryStatsDelta(delta));
      ASSERT_TRUE(store->Write(hit.get()).ok());
    }
  }
  std::unique_ptr<RocksStore> store = OpenTestStore(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->created());
  std::string value;
  ASSERT_TRUE(*store->Get(Family::kEntryStats, "e", &value));
  EntryStats stats;
  ASSERT_TRUE(DecodeEntryStats(value, &stats).ok());
  EXPECT_EQ(stats.hits, 17);
  EXPECT_EQ(stats.saved_nusd, 30);
  EXPECT_EQ(stats.last_hit_us, 102);
  EXPECT_EQ(stats.bytes, 900);
}

TEST(RocksStoreTest, AReadOnlyOpenReadsButRefusesWrites) {
  TempDir dir;
  {
    std::unique_ptr<RocksStore> store = OpenTestStore(dir.path());
    ASSERT_NE(store, nullptr);
    std::unique_ptr<StoreBatch> batch = store->NewBatch();
    batch->Put(Family::kEntries, "k", "v");
    ASSERT_TRUE(store->Write(batch.get()).ok());
  }
  std::unique_ptr<RocksStore> writer = OpenTestStore(dir.path());
  ASSERT_NE(writer, nullptr);
  // Beside a running writer, as `promptcache stats` opens a live cache.
  std::unique_ptr<RocksStore> reader =
      OpenTestStore(dir.path(), /*read_only=*/true);
  ASSERT_NE(reader, nullptr);
  std::string value;
  ASSERT_TRUE(*reader->Get(Family::kEntries, "k", &value));
  EXPECT_EQ(value, "v");
  std::unique_ptr<StoreBatch> batch = reader->NewBatch();
  batch->Put(Family::kEntries, "k", "changed");
  EXPECT_EQ(reader->Write(batch.get()).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(*writer->Get(Family::kEntries, "k", &value));
  EXPECT_EQ(value, "v");
  EXPECT_GE(writer->MemoryBytes(), 0);
  EXPECT_TRUE(writer->CheckFiles().problems.empty());
}

TEST(RocksStoreTest, RefusesWhatIsNotAStoreAndChangesNothing) {
  TempDir dir;
  RocksStoreOptions options;
  options.block_cache = rocksdb::NewLRUCache(size_t{8} << 20);
  // A file, not a directory.
  const std::string file = dir.path() + "/a_file";
  std::ofstream(file) << "notes";
  EXPECT_EQ(RocksStore::Open(file, options).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Nothing there and no create.
  RocksStoreOptions no_create = options;
  no_create.create_if_missing = false;
  EXPECT_EQ(RocksStore::Open(dir.path() + "/none", no_create).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/none"));
  // Table files without their CURRENT: a create there would delete them.
  const std::string orphaned = dir.path() + "/orphaned";
  std::filesystem::create_directories(orphaned);
  std::ofstream(orphaned + "/000012.sst") << "table bytes";
  EXPECT_EQ(RocksStore::Open(orphaned, options).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_TRUE(std::filesystem::exists(orphaned + "/000012.sst"));
  // Another program's RocksDB.
  const std::string other = dir.path() + "/other";
  {
    rocksdb::Options raw_options;
    raw_options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(raw_options, other, &raw).ok());
    ASSERT_TRUE(raw->Put(rocksdb::WriteOptions(), "theirs", "data").ok());
    delete raw;
  }
  EXPECT_EQ(RocksStore::Open(other, options).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(RocksStore::LooksLikeAStore(other));
  // No block cache: a caller's mistake, named.
  RocksStoreOptions no_cache;
  absl::Status missing = RocksStore::Open(dir.path() + "/x", no_cache).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("block_cache"), std::string::npos);
}

}  // namespace
}  // namespace promptcache::internal
