// Tests that open a cache's RocksDB directly (as an older build, or a disk
// fault, would leave it): the families it has, with the options they need.
#ifndef PROMPTCACHE_TESTS_RAW_STORE_H_
#define PROMPTCACHE_TESTS_RAW_STORE_H_

#include <string>
#include <vector>

#include "rocksdb/db.h"
#include "store/entry_stats_merge.h"

namespace promptcache::testing {

// Every family of the database at `path` (empty if it cannot be listed);
// the counters' family keeps its merge operator, which its operands need.
inline std::vector<rocksdb::ColumnFamilyDescriptor> RawFamilies(
    const std::string& path) {
  std::vector<std::string> names;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names)
           .ok()) {
    return descriptors;
  }
  for (const std::string& name : names) {
    rocksdb::ColumnFamilyOptions cf;
    if (name == "entry_stats") {
      cf.merge_operator = internal::NewEntryStatsMergeOperator();
    }
    descriptors.push_back({name, cf});
  }
  return descriptors;
}

}  // namespace promptcache::testing

#endif  // PROMPTCACHE_TESTS_RAW_STORE_H_
