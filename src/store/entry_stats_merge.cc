#include "store/entry_stats_merge.h"

#include <algorithm>
#include <string>

#include "store/entry_codec.h"
#include "store/rocks_util.h"

namespace promptcache::internal {
namespace {

void Add(const EntryStatsDelta& d, EntryStatsDelta* into) {
  into->hits += d.hits;
  into->saved_nusd += d.saved_nusd;
  into->last_hit_us = std::max(into->last_hit_us, d.last_hit_us);
}

class EntryStatsMerge : public rocksdb::MergeOperator {
 public:
  // Stored in the database's options: never rename.
  const char* Name() const override { return "promptcache.EntryStatsAdd"; }

  bool FullMergeV2(const MergeOperationInput& in,
                   MergeOperationOutput* out) const override {
    EntryStats stats;
    if (in.existing_value != nullptr &&
        !DecodeEntryStats(View(*in.existing_value), &stats).ok()) {
      stats = EntryStats();
    }
    EntryStatsDelta sum{stats.hits, stats.last_hit_us, stats.saved_nusd};
    for (const rocksdb::Slice& operand : in.operand_list) {
      EntryStatsDelta d;
      if (DecodeEntryStatsDelta(View(operand), &d).ok()) Add(d, &sum);
    }
    stats.hits = sum.hits;
    stats.last_hit_us = sum.last_hit_us;
    stats.saved_nusd = sum.saved_nusd;
    out->new_value = EncodeEntryStats(stats);
    return true;
  }

  bool PartialMerge(const rocksdb::Slice&, const rocksdb::Slice& left,
                    const rocksdb::Slice& right, std::string* new_value,
                    rocksdb::Logger*) const override {
    EntryStatsDelta sum, d;
    if (!DecodeEntryStatsDelta(View(left), &sum).ok()) {
      sum = EntryStatsDelta();
    }
    if (DecodeEntryStatsDelta(View(right), &d).ok()) Add(d, &sum);
    *new_value = EncodeEntryStatsDelta(sum);
    return true;
  }
};

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> NewEntryStatsMergeOperator() {
  return std::make_shared<EntryStatsMerge>();
}

}  // namespace promptcache::internal
