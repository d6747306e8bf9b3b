#include "store/store_families.h"

#include <algorithm>

#include "rocksdb/db.h"
#include "store/entry_stats_merge.h"

namespace promptcache::internal {

const std::vector<std::string>& CacheFamilyNames() {
  static const std::vector<std::string>* const kNames =
      new std::vector<std::string>{rocksdb::kDefaultColumnFamilyName,
                                   kEntriesFamily,
                                   kLedgerFamily,
                                   kVectorsFamily,
                                   kSemanticHitsFamily,
                                   kFeedbackFamily,
                                   kEntryStatsFamily,
                                   kBodiesFamily};
  return *kNames;
}

bool IsCacheFamily(absl::string_view name) {
  const std::vector<std::string>& names = CacheFamilyNames();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::vector<rocksdb::ColumnFamilyDescriptor> CacheFamilyDescriptors(
    const rocksdb::ColumnFamilyOptions& base,
    const std::vector<std::string>& names) {
  std::vector<rocksdb::ColumnFamilyDescriptor> out;
  for (const std::string& name : names) {
    rocksdb::ColumnFamilyOptions options = base;
    if (name == kEntryStatsFamily) {
      options.merge_operator = NewEntryStatsMergeOperator();
    }
    out.push_back({name, options});
  }
  return out;
}

}  // namespace promptcache::internal
