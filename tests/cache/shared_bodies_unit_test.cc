// internal::SharedBodies alone, on a real store (shared_bodies_test.cc
// covers them through the cache): reference counts, a body brought back by
// new references after it went missing, and what a reader sees.
#include <memory>
#include <string>
#include <vector>

#include "cache/shared_bodies.h"
#include "gtest/gtest.h"
#include "raw_store.h"
#include "store/entry_codec.h"
#include "test_util.h"

namespace promptcache::internal {
namespace {

class SharedBodiesUnitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = testing::OpenTestStore(dir_.path());
    ASSERT_NE(store_, nullptr);
    bodies_ = std::make_unique<SharedBodies>(store_.get());
  }
  void Write(const SharedBodies::Changes& changes) {
    std::unique_ptr<StoreBatch> batch = store_->NewBatch();
    ASSERT_TRUE(bodies_->Apply(changes, batch.get()).ok());
    ASSERT_TRUE(store_->Write(batch.get()).ok());
  }
  SharedBodies::Totals Count() { return *bodies_->Count(); }

  testing::TempDir dir_;
  std::unique_ptr<RocksStore> store_;
  std::unique_ptr<SharedBodies> bodies_;
};

TEST_F(SharedBodiesUnitTest, CountsReferencesAndDropsUnreferencedBodies) {
  const std::string text(600, 'x');
  const std::string key = SharedBodies::KeyOf(text);
  EXPECT_EQ(key, SharedBodies::KeyOf(std::string(600, 'x')));
  EXPECT_NE(key, SharedBodies::KeyOf(std::string(600, 'y')));
  SharedBodies::Changes two;
  two.Ref(key, text);
  two.Ref(key, text);
  Write(two);
  SharedBodies::Totals t = Count();
  EXPECT_EQ(t.bodies, 1);
  EXPECT_EQ(t.refs, 2);
  EXPECT_EQ(t.bytes, 600);
  Response answer;
  ASSERT_TRUE(bodies_->Resolve(key, &answer).ok());
  EXPECT_EQ(answer.text, text);

  // An entry that referred to it gives its reference back.
  StoredEntry entry;
  entry.answers.emplace_back();
  entry.body_keys = {key};
  SharedBodies::Changes one_entry;
  one_entry.UnrefEntry(EncodeEntry(entry));
  one_entry.UnrefEntry("not an entry");  // nothing to give back
  Write(one_entry);
  EXPECT_EQ(Count().refs, 1);
  SharedBodies::Changes last;
  last.Unref(key);
  Write(last);
  EXPECT_EQ(Count().bodies, 0);
  EXPECT_EQ(bodies_->Resolve(key, &answer).code(), absl::StatusCode::kNotFound);
}

TEST_F(SharedBodiesUnitTest, AMissingBodyIsWrittenAgainByNewReferences) {
  const std::string text(700, 'z');
  const std::string key = SharedBodies::KeyOf(text);
  // Removes of a body that is not there (lost with a damaged table) count
  // for nothing; the add brings the text back with one reference.
  SharedBodies::Changes changes;
  changes.Unref(key);
  changes.Unref(key);
  changes.Ref(key, text);
  Write(changes);
  SharedBodies::Totals t = Count();
  EXPECT_EQ(t.bodies, 1);
  EXPECT_EQ(t.refs, 1);
  Response answer;
  ASSERT_TRUE(bodies_->Resolve(key, &answer).ok());
  EXPECT_EQ(answer.text, text);
}

TEST(SharedBodiesWithoutFamilyTest, AnOldReadOnlyDatabaseSharesNothing) {
  // A database from before shared bodies: every family but "bodies".
  testing::TempDir dir;
  {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<std::string> names = CacheFamilyNames();
    names.pop_back();
    ASSERT_EQ(names.size(), static_cast<size_t>(kFamilyCount - 1));
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(),
                                  CacheFamilyDescriptors({}, names), &handles,
                                  &raw)
                    .ok());
    for (auto* h : handles)
      raw->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    delete raw;
  }
  std::unique_ptr<RocksStore> store =
      testing::OpenTestStore(dir.path(), /*read_only=*/true);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->Has(Family::kBodies));
  EXPECT_TRUE(store->Has(Family::kEntries));
  SharedBodies none(store.get());
  EXPECT_FALSE(none.enabled());
  std::unique_ptr<StoreBatch> batch = store->NewBatch();
  SharedBodies::Changes changes;
  changes.Ref("k", "text");
  EXPECT_TRUE(none.Apply(changes, batch.get()).ok());
  EXPECT_EQ(batch->Count(), 0);
  Response answer;
  EXPECT_EQ(none.Resolve("k", &answer).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(none.Count()->bodies, 0);
}

}  // namespace
}  // namespace promptcache::internal
