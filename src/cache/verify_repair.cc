// Cache::Verify and Cache::Repair: find and mend what a damaged disk, a
// torn file or an older build left behind (issue 14, defect 7).
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "rocksdb/cache.h"
#include "store/entry_codec.h"
#include "store/rocks_store.h"

namespace promptcache {
namespace {

// Unreadable keys listed in a problem line; the rest are counted.
constexpr int kListedKeys = 3;

std::string KeyText(absl::string_view key) {
  absl::StatusOr<Key128> parsed = Key128::FromBytes(key);
  if (parsed.ok()) return parsed->ToHex();
  return absl::StrCat(key.size(), "-byte key");
}

// Collects unreadable records of one kind into one problem line.
class Unreadable {
 public:
  explicit Unreadable(std::string what) : what_(std::move(what)) {}
  void Add(absl::string_view key, int64_t* counter) {
    ++*counter;
    if (listed_.size() < kListedKeys) listed_.push_back(KeyText(key));
    ++count_;
  }
  void Report(std::vector<std::string>* problems) const {
    if (count_ == 0) return;
    std::string line = absl::StrCat(count_, " ", what_, " do not decode (");
    for (size_t i = 0; i < listed_.size(); ++i) {
      absl::StrAppend(&line, i > 0 ? ", " : "", listed_[i]);
    }
    absl::StrAppend(
        &line, count_ > static_cast<int64_t>(listed_.size()) ? ", ...)" : ")");
    problems->push_back(std::move(line));
  }

 private:
  std::string what_;
  std::vector<std::string> listed_;
  int64_t count_ = 0;
};

}  // namespace

absl::Status Cache::Impl::VerifyStore(bool remove, VerifyReport* report) {
  internal::Store::FileCheck files = store_->CheckFiles();
  report->table_files = files.files;
  for (std::string& problem : files.problems) {
    report->problems.push_back(std::move(problem));
  }
  StoreReadOptions read;    // verifies checksums
  read.fill_cache = false;  // a walk of everything must not evict hot blocks
  std::unique_ptr<StoreBatch> removal = store_->NewBatch();
  absl::MutexLock lock(&write_mu_);
  // Walks one family; a table that cannot be read stops the walk.
  auto walk = [&](Family family, const char* name, const auto& visit) {
    std::unique_ptr<StoreIterator> it = store_->NewIterator(family, read);
    int64_t walked = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++walked) {
      visit(it->key(), it->value());
    }
    if (!it->status().ok()) {
      report->problems.push_back(absl::StrCat("the ", name,
                                              " family could not be read past "
                                              "record ",
                                              walked, ": ",
                                              it->status().message()));
    }
  };
  // Whether an entry is gone (not merely unreadable).
  auto entry_gone = [&](absl::string_view key) {
    absl::StatusOr<bool> found = store_->Read(
        Family::kEntries, key, [](absl::string_view) {}, read);
    return found.ok() && !*found;
  };

  absl::flat_hash_set<std::string> removed_entries;
  std::vector<Key128> removed_vectors;
  Unreadable bad_entries("entries");
  walk(Family::kEntries, "entries",
       [&](absl::string_view key, absl::string_view value) {
         if (!Key128::FromBytes(key).ok() ||
             !internal::DecodeEntry(value).ok()) {
           bad_entries.Add(key, &report->unreadable_entries);
           if (remove) {
             removal->Delete(Family::kEntries, key);
             removal->Delete(Family::kEntryStats, key);
             // Its vector goes in the vectors' walk below, with its scope.
             removed_entries.insert(std::string(key));
           }
           return;
         }
         ++report->entries;
       });
  bad_entries.Report(&report->problems);

  Unreadable bad_rows("ledger rows");
  walk(Family::kLedger, "ledger",
       [&](absl::string_view key, absl::string_view value) {
         LedgerRow row;
         if (!internal::SplitLedgerKey(key, &row).ok() ||
             !internal::DecodeLedgerRow(value, &row).ok()) {
           // Kept even by Repair: money already spent is not forgotten, and
           // Open leaves such rows out of reports.
           bad_rows.Add(key, &report->unreadable_ledger_rows);
           return;
         }
         ++report->ledger_rows;
       });
  bad_rows.Report(&report->problems);

  Unreadable bad_vectors("vectors");
  int64_t orphan_vectors = 0;
  walk(Family::kVectors, "vectors",
       [&](absl::string_view key, absl::string_view value) {
         internal::VectorRecord record;
         const bool readable = internal::DecodeVector(value, &record).ok();
         if (!readable) bad_vectors.Add(key, &report->unreadable_vectors);
         if (readable && !Key128::FromBytes(key).ok()) return;
         const bool orphan =
             readable && (removed_entries.contains(key) || entry_gone(key));
         if (orphan) ++orphan_vectors;
         if (readable && !orphan) ++report->vectors;
         if (remove && (!readable || orphan)) {
           removal->Delete(Family::kVectors, key);
           if (absl::StatusOr<Key128> entry = Key128::FromBytes(key);
               entry.ok()) {
             removed_vectors.push_back(*entry);
           }
           // A saved index holding it is then rebuilt, not trusted.
           if (readable) {
             BumpGeneration(removal.get(),
                            Key128{record.scope_hi, record.scope_lo});
           }
         }
       });
  bad_vectors.Report(&report->problems);
  report->orphan_vectors = orphan_vectors;

  walk(Family::kEntryStats, "entry_stats",
       [&](absl::string_view key, absl::string_view) {
         if (!entry_gone(key)) return;
         ++report->orphan_stats;
         if (remove) removal->Delete(Family::kEntryStats, key);
       });
  if (orphan_vectors > 0) {
    report->problems.push_back(
        absl::StrCat(orphan_vectors, " vectors of entries that are gone"));
  }
  if (report->orphan_stats > 0) {
    report->problems.push_back(absl::StrCat(
        report->orphan_stats, " entry counters of entries that are gone"));
  }
  if (remove && removal->Count() > 0) {
    if (absl::Status s = Prefixed("removing unreadable records",
                                  store_->Write(removal.get()));
        !s.ok()) {
      return s;
    }
    // The index in memory (saved at close) must not keep them either.
    if (index_ != nullptr) {
      for (const Key128& entry : removed_vectors) index_->Remove(entry);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<VerifyReport> Cache::Verify(const std::string& path) {
  Options options;
  options.read_only = true;
  absl::StatusOr<std::unique_ptr<Cache>> cache = Open(path, options);
  if (!cache.ok()) return cache.status();
  VerifyReport report;
  if (absl::Status s = (*cache)->impl_->VerifyStore(/*remove=*/false, &report);
      !s.ok()) {
    return s;
  }
  return report;
}

absl::StatusOr<VerifyReport> Cache::Repair(const std::string& path,
                                           const Options& options) {
  if (options.read_only) {
    return absl::InvalidArgumentError("Cache::Repair needs a writable open");
  }
  if (!internal::RocksStore::LooksLikeAStore(path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "'", path,
        "' does not look like a promptcache cache (no entries family in its "
        "MANIFEST or OPTIONS files): nothing changed"));
  }
  if (absl::Status s = internal::RocksStore::Repair(path); !s.ok()) return s;
  // A metadata table moved to lost/ takes the schema version with it: this
  // is a promptcache cache (checked above), of this build's schema now.
  {
    internal::RocksStoreOptions store_options;
    store_options.block_cache = rocksdb::NewLRUCache(size_t{8} << 20);
    absl::StatusOr<std::unique_ptr<internal::RocksStore>> store =
        internal::RocksStore::Open(path, store_options);
    if (!store.ok()) {
      return Prefixed(absl::StrCat("opening '", path, "' after repair"),
                      store.status());
    }
    std::string version;
    absl::StatusOr<bool> has_version =
        (*store)->Get(Family::kMeta, kSchemaKey, &version);
    if (has_version.ok() && !*has_version) {
      std::unique_ptr<StoreBatch> batch = (*store)->NewBatch();
      batch->Put(Family::kMeta, kSchemaKey, std::to_string(kSchemaVersion));
      (*store)->Write(batch.get()).IgnoreError();
    }
  }
  {
    absl::StatusOr<std::unique_ptr<Cache>> cache = Open(path, options);
    if (!cache.ok()) return cache.status();
    VerifyReport removed;
    if (absl::Status s =
            (*cache)->impl_->VerifyStore(/*remove=*/true, &removed);
        !s.ok()) {
      return s;
    }
  }
  return Verify(path);
}

}  // namespace promptcache
