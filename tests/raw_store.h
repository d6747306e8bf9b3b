// Tests that open a cache's store without a cache: as a RocksStore (the
// parts that keep their records in it), or as a raw RocksDB (as an older
// build, or a disk fault, would leave it) with the families it has.
#ifndef PROMPTCACHE_TESTS_RAW_STORE_H_
#define PROMPTCACHE_TESTS_RAW_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "store/rocks_store.h"
#include "store/store_families.h"

namespace promptcache::testing {

// Every family of the database at `path` (empty if it cannot be listed);
// the counters' family keeps its merge operator, which its operands need.
inline std::vector<rocksdb::ColumnFamilyDescriptor> RawFamilies(
    const std::string& path) {
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names)
           .ok()) {
    return {};
  }
  return internal::CacheFamilyDescriptors(rocksdb::ColumnFamilyOptions(),
                                          names);
}

// A store at `path` (created when missing) with a small block cache; null
// (and a test failure) when it does not open.
inline std::unique_ptr<internal::RocksStore> OpenTestStore(
    const std::string& path, bool read_only = false) {
  internal::RocksStoreOptions options;
  options.read_only = read_only;
  options.block_cache = rocksdb::NewLRUCache(size_t{8} << 20);
  absl::StatusOr<std::unique_ptr<internal::RocksStore>> store =
      internal::RocksStore::Open(path, options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

}  // namespace promptcache::testing

#endif  // PROMPTCACHE_TESTS_RAW_STORE_H_
