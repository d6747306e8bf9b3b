#include "store/rocks_store.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/metadata.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "store/recovery_log.h"
#include "store/rocks_util.h"
#include "store/store_families.h"
#include "util/file_text.h"

namespace promptcache::internal {
namespace {

rocksdb::Slice Slice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

// A RocksDB write batch, with the store's family handles.
class RocksBatch : public StoreBatch {
 public:
  explicit RocksBatch(rocksdb::ColumnFamilyHandle* const* handles)
      : handles_(handles) {}
  void Put(Family family, absl::string_view key,
           absl::string_view value) override {
    // Only a writable store takes writes, and it has every family.
    batch_.Put(handles_[static_cast<int>(family)], Slice(key), Slice(value))
        .PermitUncheckedError();
  }
  void Delete(Family family, absl::string_view key) override {
    batch_.Delete(handles_[static_cast<int>(family)], Slice(key))
        .PermitUncheckedError();
  }
  void Merge(Family family, absl::string_view key,
             absl::string_view operand) override {
    batch_.Merge(handles_[static_cast<int>(family)], Slice(key), Slice(operand))
        .PermitUncheckedError();
  }
  int Count() const override { return static_cast<int>(batch_.Count()); }
  rocksdb::WriteBatch* rocks() { return &batch_; }

 private:
  rocksdb::ColumnFamilyHandle* const* handles_;
  rocksdb::WriteBatch batch_;
};

class RocksView : public StoreView {
 public:
  RocksView(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~RocksView() override { db_->ReleaseSnapshot(snapshot_); }
  const rocksdb::Snapshot* snapshot() const { return snapshot_; }

 private:
  rocksdb::DB* const db_;
  const rocksdb::Snapshot* const snapshot_;
};

class RocksIterator : public StoreIterator {
 public:
  // `it` null: an empty family.
  explicit RocksIterator(rocksdb::Iterator* it) : it_(it) {}
  void SeekToFirst() override {
    if (it_) it_->SeekToFirst();
  }
  void Seek(absl::string_view key) override {
    if (it_) it_->Seek(Slice(key));
  }
  bool Valid() const override { return it_ && it_->Valid(); }
  void Next() override { it_->Next(); }
  absl::string_view key() const override { return View(it_->key()); }
  absl::string_view value() const override { return View(it_->value()); }
  absl::Status status() const override {
    if (!it_) return absl::OkStatus();
    return FromRocks(it_->status(), "store");
  }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
};

// A database holding only (some of) our families, all empty: a create
// that a crash cut short.
bool OnlyEmptyFamiliesOfOurs(const std::string& path,
                             const std::vector<std::string>& families) {
  for (const std::string& name : families) {
    if (!IsCacheFamily(name)) return false;
  }
  const std::vector<rocksdb::ColumnFamilyDescriptor> descriptors =
      CacheFamilyDescriptors(rocksdb::ColumnFamilyOptions(), families);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, descriptors,
                                    &handles, &raw)
           .ok()) {
    return false;
  }
  bool empty = true;
  for (rocksdb::ColumnFamilyHandle* family : handles) {
    std::unique_ptr<rocksdb::Iterator> it(
        raw->NewIterator(rocksdb::ReadOptions(), family));
    it->SeekToFirst();
    if (it->Valid() || !it->status().ok()) empty = false;
  }
  for (rocksdb::ColumnFamilyHandle* family : handles) {
    raw->DestroyColumnFamilyHandle(family).PermitUncheckedError();
  }
  raw->Close().PermitUncheckedError();
  delete raw;
  return empty;
}

// Checks `path` before a create: refuses database files without their
// CURRENT, removes the empty logs of a create cut short, makes the
// directory.
absl::Status PrepareCreate(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path dir(path);
  // Files of a database without its CURRENT: creating a new database
  // there would make RocksDB delete them (issue 14, defect 6).
  // Empty logs of a create cut short: RocksDB refuses to create a
  // database beside them, and they hold nothing.
  std::vector<std::filesystem::path> empty_logs;
  if (std::filesystem::is_directory(dir, ec)) {
    for (const auto& file : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = file.path().filename().string();
      // Data in RocksDB's own files: N.sst, or a non-empty N.log. (A
      // MANIFEST alone is a create cut short before its CURRENT was
      // written: nothing to lose, the create is done again.)
      const size_t dot = name.find('.');
      const bool numbered = dot != std::string::npos && dot > 0 &&
                            name.find_first_not_of("0123456789") == dot;
      const bool log = numbered && name.substr(dot) == ".log";
      const bool empty_log =
          log && std::filesystem::file_size(file.path(), ec) == 0 && !ec;
      if (empty_log) empty_logs.push_back(file.path());
      const bool data =
          numbered && (name.substr(dot) == ".sst" || (log && !empty_log));
      if (data) {
        return absl::DataLossError(absl::StrCat(
            "'", path, "' holds database files (", name,
            ") but no CURRENT file: not opened, so that nothing is "
            "deleted; restore CURRENT (it names the newest MANIFEST) or "
            "move the files away"));
      }
    }
  }
  for (const std::filesystem::path& log : empty_logs) {
    std::filesystem::remove(log, ec);
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create directory '", path, "': ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RocksStore>> RocksStore::Open(
    const std::string& path, const RocksStoreOptions& options) {
  if (path.empty()) return absl::InvalidArgumentError("cache path is empty");
  if (options.block_cache == nullptr) {
    return absl::InvalidArgumentError("RocksStoreOptions::block_cache is null");
  }
  std::error_code ec;
  const std::filesystem::path dir(path);
  const bool exists = std::filesystem::exists(dir / "CURRENT", ec);
  if (!exists) {
    if (std::filesystem::exists(dir, ec) &&
        !std::filesystem::is_directory(dir, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", path, "' exists and is not a directory"));
    }
    if (!options.create_if_missing || options.read_only) {
      return absl::NotFoundError(
          absl::StrCat("no promptcache database at '", path, "'"));
    }
    if (absl::Status s = PrepareCreate(path); !s.ok()) return s;
  }

  rocksdb::Options db_options;
  if (options.env != nullptr) db_options.env = options.env;
  db_options.create_if_missing = !exists;
  db_options.create_missing_column_families = !options.read_only;
  db_options.IncreaseParallelism(2);
  db_options.max_open_files = 512;
  db_options.keep_log_file_num = 3;
  // One memory budget: memtables are charged to the block cache (pinned
  // placeholders); it evicts blocks to make room.
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(options.memtable_bytes,
                                                    options.block_cache);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = options.block_cache;
  // Bloom filters make misses cheap: most misses never touch a data block.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.data_block_index_type =
      rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
  // Memtables are capped all together by the write buffer manager (the
  // default would let each of the eight families hold 2 x 64 MiB).
  rocksdb::ColumnFamilyOptions cf_options(db_options);
  cf_options.write_buffer_size = options.memtable_bytes / 2;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_options.compression = rocksdb::kLZ4Compression;

  std::vector<std::string> families;
  if (exists) {
    rocksdb::Status s =
        rocksdb::DB::ListColumnFamilies(db_options, path, &families);
    if (!s.ok()) {
      return FromRocks(s, absl::StrCat("cannot open cache at '", path, "'"));
    }
    const bool ours = absl::c_linear_search(families, kEntriesFamily) &&
                      absl::c_linear_search(families, kLedgerFamily);
    if (!ours && !options.read_only &&
        OnlyEmptyFamiliesOfOurs(path, families)) {
      // A create cut short while RocksDB added the families one by one:
      // finished below (create_missing_column_families).
    } else if (!ours) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", path,
          "' is a RocksDB database without promptcache's column families: "
          "not a promptcache cache, or its MANIFEST is damaged"));
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors =
      CacheFamilyDescriptors(cf_options);
  // The bodies family came after the first release: a read-only open of an
  // older database cannot create it (and needs it not: no entry refers to
  // a body).
  if (exists && options.read_only &&
      !absl::c_linear_search(families, kBodiesFamily)) {
    descriptors.pop_back();
  }
  // Write-ahead-log recovery: RocksDB's point-in-time mode (its default,
  // chosen on purpose). A damaged log is replayed up to the damage: every
  // write batch before it whole (an entry with its ledger row), everything
  // after it dropped, the database still opens. What was dropped is kept
  // from RocksDB's log and reported (CacheStats::wal_bytes_dropped): refusing
  // to open would lose the whole cache to save a suffix of it.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  std::shared_ptr<RecoveryLog> recovery_log;
  // Not for read-only opens: creating the logger renames a running
  // writer's LOG file (and a read-only open writes nothing to lose).
  if (!options.read_only) {
    std::shared_ptr<rocksdb::Logger> file_log;
    if (rocksdb::CreateLoggerFromOptions(path, db_options, &file_log).ok()) {
      recovery_log = std::make_shared<RecoveryLog>(file_log);
      db_options.info_log = recovery_log;
    }
  }
  std::unique_ptr<RocksStore> store(new RocksStore());
  store->read_only_ = options.read_only;
  store->created_ = !exists;
  store->write_options_.sync = options.sync_writes;
  rocksdb::Status s =
      options.read_only
          ? rocksdb::DB::OpenForReadOnly(db_options, path, descriptors,
                                         &store->handles_, &store->db_)
          : rocksdb::DB::Open(db_options, path, descriptors, &store->handles_,
                              &store->db_);
  if (!s.ok()) {
    store->db_ = nullptr;
    return FromRocks(s, absl::StrCat("cannot open cache at '", path, "'"));
  }
  if (recovery_log != nullptr) {
    store->wal_bytes_dropped_ = recovery_log->dropped_bytes();
    store->wal_recovery_ = absl::StrJoin(recovery_log->dropped_lines(), "\n");
  }
  // In CacheFamilyNames() order, which is Family's; the bodies family may
  // be absent (above).
  for (size_t i = 0; i < store->handles_.size() && i < kFamilyCount; ++i) {
    store->handles_by_family_[i] = store->handles_[i];
  }
  return store;
}

RocksStore::~RocksStore() {
  if (db_ == nullptr) return;
  if (!read_only_) {
    db_->Flush(rocksdb::FlushOptions(), handles_).PermitUncheckedError();
  }
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();
  delete db_;
}

bool RocksStore::LooksLikeAStore(const std::string& path) {
  std::vector<std::string> families;
  if (rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &families)
          .ok()) {
    return absl::c_linear_search(families, kEntriesFamily) &&
           absl::c_linear_search(families, kLedgerFamily);
  }
  std::error_code ec;
  for (const auto& file : std::filesystem::directory_iterator(path, ec)) {
    if (file.path().filename().string().rfind("OPTIONS-", 0) != 0) continue;
    absl::StatusOr<std::string> text =
        ReadFileText(file.path().string(), "options file");
    if (text.ok() &&
        absl::StrContains(*text,
                          absl::StrCat("CFOptions \"", kEntriesFamily, "\""))) {
      return true;
    }
  }
  return false;
}

absl::Status RocksStore::Repair(const std::string& path) {
  // Every family under its own options (the counters' family merges its
  // operands).
  const std::vector<rocksdb::ColumnFamilyDescriptor> families =
      CacheFamilyDescriptors(rocksdb::ColumnFamilyOptions());
  if (absl::Status s =
          FromRocks(rocksdb::RepairDB(path, rocksdb::DBOptions(), families),
                    absl::StrCat("repairing '", path, "'"));
      !s.ok()) {
    return s;
  }
  // RepairDB brings back only the families it found tables of (a store
  // killed before its first flush had them all in its log): the missing
  // ones are created empty, or the store would never open again.
  rocksdb::DBOptions reopen;
  reopen.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (absl::Status s =
          FromRocks(rocksdb::DB::Open(reopen, path, families, &handles, &raw),
                    absl::StrCat("opening '", path, "' after repair"));
      !s.ok()) {
    return s;
  }
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    raw->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  const rocksdb::Status closed = raw->Close();
  delete raw;
  return FromRocks(closed, absl::StrCat("closing '", path, "' after repair"));
}

bool RocksStore::Has(Family family) const { return Handle(family) != nullptr; }

rocksdb::ReadOptions RocksStore::ToRocks(const StoreReadOptions& read) const {
  rocksdb::ReadOptions out;
  if (read.view != nullptr) {
    out.snapshot = static_cast<const RocksView*>(read.view)->snapshot();
  }
  out.fill_cache = read.fill_cache;
  out.verify_checksums = read.verify_checksums;
  return out;
}

absl::StatusOr<bool> RocksStore::Get(Family family, absl::string_view key,
                                     std::string* value,
                                     const StoreReadOptions& read) {
  rocksdb::ColumnFamilyHandle* handle = Handle(family);
  if (handle == nullptr) return false;
  rocksdb::Status s = db_->Get(ToRocks(read), handle, Slice(key), value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "store");
  return true;
}

absl::StatusOr<bool> RocksStore::Read(
    Family family, absl::string_view key,
    absl::FunctionRef<void(absl::string_view)> fn,
    const StoreReadOptions& read) {
  rocksdb::ColumnFamilyHandle* handle = Handle(family);
  if (handle == nullptr) return false;
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(ToRocks(read), handle, Slice(key), &value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "store");
  fn(View(value));
  return true;
}

std::unique_ptr<StoreBatch> RocksStore::NewBatch() {
  return std::make_unique<RocksBatch>(handles_by_family_);
}

absl::Status RocksStore::Write(StoreBatch* batch) {
  if (read_only_) {
    return absl::FailedPreconditionError("the store is open read-only");
  }
  rocksdb::WriteBatch* rocks = static_cast<RocksBatch*>(batch)->rocks();
  rocksdb::Status s = db_->Write(write_options_, rocks);
  // A failed write (full disk, EIO) leaves RocksDB refusing every write
  // until resumed: without Resume() the store would stay read-only after
  // the fault is gone. One more try once resumed.
  if (!s.ok() && !s.IsInvalidArgument() && !s.IsNotSupported() &&
      db_->Resume().ok()) {
    s = db_->Write(write_options_, rocks);
  }
  return FromRocks(s, "store");
}

std::unique_ptr<StoreView> RocksStore::NewView() {
  return std::make_unique<RocksView>(db_);
}

std::unique_ptr<StoreIterator> RocksStore::NewIterator(
    Family family, const StoreReadOptions& read) {
  rocksdb::ColumnFamilyHandle* handle = Handle(family);
  if (handle == nullptr) return std::make_unique<RocksIterator>(nullptr);
  return std::make_unique<RocksIterator>(
      db_->NewIterator(ToRocks(read), handle));
}

int64_t RocksStore::MemoryBytes() {
  uint64_t memtables = 0;
  if (!db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kSizeAllMemTables,
                                     &memtables)) {
    return 0;
  }
  return static_cast<int64_t>(memtables);
}

Store::FileCheck RocksStore::CheckFiles() {
  FileCheck check;
  std::vector<rocksdb::LiveFileMetaData> files;
  db_->GetLiveFilesMetaData(&files);
  check.files = static_cast<int64_t>(files.size());
  if (rocksdb::Status s = db_->VerifyChecksum(); !s.ok()) {
    check.problems.push_back(absl::StrCat("table files: ", s.ToString()));
  }
  return check;
}

}  // namespace promptcache::internal
