// Tests that open a cache's RocksDB directly (as an older build, or a disk
// fault, would leave it): the families it has, with the options they need.
#ifndef PROMPTCACHE_TESTS_RAW_STORE_H_
#define PROMPTCACHE_TESTS_RAW_STORE_H_

#include <string>
#include <vector>

#include "cache/store_families.h"
#include "rocksdb/db.h"

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

}  // namespace promptcache::testing

#endif  // PROMPTCACHE_TESTS_RAW_STORE_H_
