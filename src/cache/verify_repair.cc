// Cache::Verify and Cache::Repair: find and mend what a damaged disk, a
// torn file or an older build left behind (issue 14, defect 7).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/rocks_util.h"
#include "rocksdb/db.h"
#include "rocksdb/metadata.h"
#include "store/entry_codec.h"
#include "store/entry_stats_merge.h"
#include "util/file_text.h"

namespace promptcache {
namespace {

using internal::FromRocks;
using internal::View;

// Unreadable keys listed in a problem line; the rest are counted.
constexpr int kListedKeys = 3;

std::string KeyText(const rocksdb::Slice& key) {
  absl::StatusOr<Key128> parsed = Key128::FromBytes(View(key));
  if (parsed.ok()) return parsed->ToHex();
  return absl::StrCat(key.size(), "-byte key");
}

// Collects unreadable records of one kind into one problem line.
class Unreadable {
 public:
  explicit Unreadable(std::string what) : what_(std::move(what)) {}
  void Add(const rocksdb::Slice& key, int64_t* counter) {
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

// Whether `path` holds a promptcache database, even one whose MANIFEST is
// damaged: its families are listed, or an OPTIONS file RocksDB wrote names
// the entries family. Repair must not rewrite a directory that is not one.
bool LooksLikeACache(const std::string& path) {
  std::vector<std::string> families;
  if (rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &families)
          .ok()) {
    return absl::c_linear_search(families, internal::kEntriesFamily) &&
           absl::c_linear_search(families, internal::kLedgerFamily);
  }
  std::error_code ec;
  for (const auto& file : std::filesystem::directory_iterator(path, ec)) {
    if (file.path().filename().string().rfind("OPTIONS-", 0) != 0) continue;
    absl::StatusOr<std::string> text =
        internal::ReadFileText(file.path().string(), "options file");
    if (text.ok() && absl::StrContains(
                         *text, absl::StrCat("CFOptions \"",
                                             internal::kEntriesFamily, "\""))) {
      return true;
    }
  }
  return false;
}

}  // namespace

absl::Status Cache::Impl::VerifyStore(bool remove, VerifyReport* report) {
  std::vector<rocksdb::LiveFileMetaData> files;
  db_->GetLiveFilesMetaData(&files);
  report->table_files = static_cast<int64_t>(files.size());
  if (rocksdb::Status s = db_->VerifyChecksum(); !s.ok()) {
    report->problems.push_back(absl::StrCat("table files: ", s.ToString()));
  }
  rocksdb::ReadOptions read;
  read.verify_checksums = true;
  read.fill_cache = false;  // a walk of everything must not evict hot blocks
  rocksdb::WriteBatch removal;
  absl::MutexLock lock(&write_mu_);
  // Walks one family; a table that cannot be read stops the walk.
  auto walk = [&](rocksdb::ColumnFamilyHandle* family, const char* name,
                  const auto& visit) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, family));
    int64_t walked = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++walked) {
      visit(it->key(), it->value());
    }
    if (!it->status().ok()) {
      report->problems.push_back(absl::StrCat("the ", name,
                                              " family could not be read past "
                                              "record ",
                                              walked, ": ",
                                              it->status().ToString()));
    }
  };
  // Whether an entry is gone (not merely unreadable).
  auto entry_gone = [&](const rocksdb::Slice& key) {
    rocksdb::PinnableSlice value;
    return db_->Get(read, entries_cf_, key, &value).IsNotFound();
  };

  absl::flat_hash_set<std::string> removed_entries;
  std::vector<Key128> removed_vectors;
  Unreadable bad_entries("entries");
  walk(entries_cf_, "entries",
       [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
         if (!Key128::FromBytes(View(key)).ok() ||
             !internal::DecodeEntry(View(value)).ok()) {
           bad_entries.Add(key, &report->unreadable_entries);
           if (remove) {
             removal.Delete(entries_cf_, key);
             removal.Delete(entry_stats_cf_, key);
             // Its vector goes in the vectors' walk below, with its scope.
             removed_entries.insert(key.ToString());
           }
           return;
         }
         ++report->entries;
       });
  bad_entries.Report(&report->problems);

  Unreadable bad_rows("ledger rows");
  walk(ledger_cf_, "ledger",
       [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
         LedgerRow row;
         if (!internal::SplitLedgerKey(View(key), &row).ok() ||
             !internal::DecodeLedgerRow(View(value), &row).ok()) {
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
  walk(vectors_cf_, "vectors",
       [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
         internal::VectorRecord record;
         const bool readable =
             internal::DecodeVector(View(value), &record).ok();
         if (!readable) bad_vectors.Add(key, &report->unreadable_vectors);
         if (readable && !Key128::FromBytes(View(key)).ok()) return;
         const bool orphan =
             readable &&
             (removed_entries.contains(key.ToString()) || entry_gone(key));
         if (orphan) ++orphan_vectors;
         if (readable && !orphan) ++report->vectors;
         if (remove && (!readable || orphan)) {
           removal.Delete(vectors_cf_, key);
           if (absl::StatusOr<Key128> entry = Key128::FromBytes(View(key));
               entry.ok()) {
             removed_vectors.push_back(*entry);
           }
           // A saved index holding it is then rebuilt, not trusted.
           if (readable) {
             BumpGeneration(&removal, Key128{record.scope_hi, record.scope_lo});
           }
         }
       });
  bad_vectors.Report(&report->problems);
  report->orphan_vectors = orphan_vectors;

  walk(entry_stats_cf_, "entry_stats",
       [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
         if (!entry_gone(key)) return;
         ++report->orphan_stats;
         if (remove) removal.Delete(entry_stats_cf_, key);
       });
  if (orphan_vectors > 0) {
    report->problems.push_back(
        absl::StrCat(orphan_vectors, " vectors of entries that are gone"));
  }
  if (report->orphan_stats > 0) {
    report->problems.push_back(absl::StrCat(
        report->orphan_stats, " entry counters of entries that are gone"));
  }
  if (remove && removal.Count() > 0) {
    if (absl::Status s = FromRocks(db_->Write(write_options_, &removal),
                                   "removing unreadable records");
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
  if (!LooksLikeACache(path)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "'", path,
        "' does not look like a promptcache cache (no entries family in its "
        "MANIFEST or OPTIONS files): nothing changed"));
  }
  // RocksDB's repair, with every family under its own options (the
  // counters' family merges its operands).
  rocksdb::DBOptions db_options;
  const std::vector<rocksdb::ColumnFamilyDescriptor> families =
      internal::CacheFamilyDescriptors(rocksdb::ColumnFamilyOptions());
  if (rocksdb::Status s = rocksdb::RepairDB(path, db_options, families);
      !s.ok()) {
    return FromRocks(s, absl::StrCat("repairing '", path, "'"));
  }
  // A metadata table moved to lost/ takes the schema version with it: this
  // is a promptcache cache (checked above), of this build's schema now.
  {
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    rocksdb::DBOptions reopen = db_options;
    reopen.create_missing_column_families = true;
    if (rocksdb::Status s =
            rocksdb::DB::Open(reopen, path, families, &handles, &raw);
        !s.ok()) {
      return FromRocks(s, absl::StrCat("opening '", path, "' after repair"));
    }
    std::string version;
    if (raw->Get(rocksdb::ReadOptions(), handles[0], "schema_version", &version)
            .IsNotFound()) {
      raw->Put(rocksdb::WriteOptions(), handles[0], "schema_version",
               std::to_string(kSchemaVersion))
          .PermitUncheckedError();
    }
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      raw->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    raw->Close().PermitUncheckedError();
    delete raw;
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
