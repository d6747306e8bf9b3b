// Cache::Impl::Open: RocksDB options and the memory budget, families,
// schema checks and migrations, recovery, and the parts opened after it.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "cache/rocks_util.h"
#include "cost/token_estimate.h"
#include "promptcache/cache.h"
#include "request/namespace.h"
#include "rocksdb/cache.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "store/entry_stats_merge.h"

namespace promptcache {
bool Cache::Impl::OnlyEmptyFamiliesOfOurs(
    const std::vector<std::string>& families) const {
  for (const std::string& name : families) {
    if (!internal::IsCacheFamily(name)) return false;
  }
  const std::vector<rocksdb::ColumnFamilyDescriptor> descriptors =
      internal::CacheFamilyDescriptors(rocksdb::ColumnFamilyOptions(),
                                       families);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path_, descriptors,
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

absl::Status Cache::Impl::Open() {
  if (options_.max_answers_per_key < 1) {
    return absl::InvalidArgumentError(
        "Options::max_answers_per_key must be >= 1");
  }
  if (options_.default_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "Options::default_ttl must be positive (InfiniteDuration: never)");
  }
  if (options_.stats_flush_interval <= absl::ZeroDuration() ||
      options_.entry_stats_flush_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "Options::stats_flush_interval and entry_stats_flush_interval must be "
        "positive (InfiniteDuration: only on FlushStats() and close)");
  }
  if (options_.max_bytes != 0 && options_.max_bytes < (size_t{1} << 16)) {
    return absl::InvalidArgumentError(
        "Options::max_bytes must be 0 (no budget) or at least 64 KiB");
  }
  if (!(options_.eviction_low_watermark > 0 &&
        options_.eviction_low_watermark <= 1)) {
    return absl::InvalidArgumentError(
        "Options::eviction_low_watermark must be in (0, 1]");
  }
  if (!(options_.min_dollars_saved_per_kib >= 0) ||
      !std::isfinite(options_.min_dollars_saved_per_kib)) {
    return absl::InvalidArgumentError(
        "Options::min_dollars_saved_per_kib must be finite and >= 0");
  }
  if (const size_t room = HotRoom(options_.block_cache_bytes);
      options_.hot_cache_bytes > room) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Options::hot_cache_bytes (", options_.hot_cache_bytes,
        ") must fit in Options::block_cache_bytes (",
        options_.block_cache_bytes, ") beside the memtables (",
        MemtableBytes(options_.block_cache_bytes), ") and room for blocks (",
        MinBlockBytes(options_.block_cache_bytes), "): at most ", room,
        "; raise block_cache_bytes or lower hot_cache_bytes"));
  }
  if (path_.empty()) return absl::InvalidArgumentError("cache path is empty");
  std::error_code ec;
  const std::filesystem::path dir(path_);
  const bool exists = std::filesystem::exists(dir / "CURRENT", ec);
  if (!exists) {
    if (std::filesystem::exists(dir, ec) &&
        !std::filesystem::is_directory(dir, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", path_, "' exists and is not a directory"));
    }
    if (!options_.create_if_missing || options_.read_only) {
      return absl::NotFoundError(
          absl::StrCat("no promptcache database at '", path_, "'"));
    }
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
              "'", path_, "' holds database files (", name,
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
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot create directory '", path_, "': ", ec.message()));
    }
  }

  rocksdb::Options db_options;
  if (rocksdb::Env* env = internal::EnvForTesting(); env != nullptr) {
    db_options.env =
        env;  // fault injection (tests/cache/fault_injection_test.cc)
  }
  db_options.create_if_missing = !exists;
  db_options.create_missing_column_families = !options_.read_only;
  db_options.IncreaseParallelism(2);
  db_options.max_open_files = 512;
  db_options.keep_log_file_num = 3;
  rocksdb::BlockBasedTableOptions table;
  {
    // Few enough shards that each keeps >= 2 MiB when the hot answers take
    // their most: each shard gets an equal part of the capacity, and the
    // memtables' charge comes in 256 KiB placeholders that must not fill a
    // shard on their own.
    const size_t min_capacity = RocksDbFloor(options_.block_cache_bytes);
    int shard_bits = 0;
    while (shard_bits < 6 && (min_capacity >> (shard_bits + 1)) >= (2 << 20)) {
      ++shard_bits;
    }
    block_cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes, shard_bits);
  }
  table.block_cache = block_cache_;
  // One memory budget: memtables are charged to the block cache (pinned
  // placeholders) and hot answers lower its capacity (HotAnswers'
  // reservation); it evicts blocks to make room.
  const size_t memtable_bytes = MemtableBytes(options_.block_cache_bytes);
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(memtable_bytes,
                                                    block_cache_);
  // Bloom filters make misses cheap: most misses never touch a data block.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.data_block_index_type =
      rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
  // Memtables are capped all together by the write buffer manager (the
  // default would let each of the eight families hold 2 x 64 MiB).
  rocksdb::ColumnFamilyOptions cf_options(db_options);
  cf_options.write_buffer_size = memtable_bytes / 2;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_options.compression = rocksdb::kLZ4Compression;

  if (exists) {
    std::vector<std::string> families;
    rocksdb::Status s =
        rocksdb::DB::ListColumnFamilies(db_options, path_, &families);
    if (!s.ok()) {
      return FromRocks(s, absl::StrCat("cannot open cache at '", path_, "'"));
    }
    const bool ours = std::find(families.begin(), families.end(),
                                kEntriesFamily) != families.end() &&
                      std::find(families.begin(), families.end(),
                                kLedgerFamily) != families.end();
    if (!ours && !options_.read_only && OnlyEmptyFamiliesOfOurs(families)) {
      // A create cut short while RocksDB added the families one by one:
      // finished below (create_missing_column_families).
    } else if (!ours) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", path_,
          "' is a RocksDB database without promptcache's column families: "
          "not a promptcache cache, or its MANIFEST is damaged"));
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors =
      internal::CacheFamilyDescriptors(cf_options);
  // The bodies family came after the first release: a read-only open of an
  // older database cannot create it (and needs it not: no entry refers to
  // a body).
  if (exists && options_.read_only) {
    std::vector<std::string> families;
    rocksdb::DB::ListColumnFamilies(db_options, path_, &families);
    if (std::find(families.begin(), families.end(), kBodiesFamily) ==
        families.end()) {
      descriptors.pop_back();
    }
  }
  // Write-ahead-log recovery: RocksDB's point-in-time mode (its default,
  // chosen on purpose). A damaged log is replayed up to the damage: every
  // write batch before it whole (an entry with its ledger row), everything
  // after it dropped, the database still opens. What was dropped is kept
  // from RocksDB's log and reported (CacheStats::wal_bytes_dropped): refusing
  // to open would lose the whole cache to save a suffix of it.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // Not for read-only opens: creating the logger renames a running
  // writer's LOG file (and a read-only open writes nothing to lose).
  if (!options_.read_only) {
    std::shared_ptr<rocksdb::Logger> file_log;
    if (rocksdb::CreateLoggerFromOptions(path_, db_options, &file_log).ok()) {
      recovery_log_ = std::make_shared<internal::RecoveryLog>(file_log);
      db_options.info_log = recovery_log_;
    }
  }
  rocksdb::Status s =
      options_.read_only
          ? rocksdb::DB::OpenForReadOnly(db_options, path_, descriptors,
                                         &handles_, &db_)
          : rocksdb::DB::Open(db_options, path_, descriptors, &handles_, &db_);
  if (!s.ok()) {
    db_ = nullptr;
    return FromRocks(s, absl::StrCat("cannot open cache at '", path_, "'"));
  }
  if (recovery_log_ != nullptr) {
    wal_bytes_dropped_ = recovery_log_->dropped_bytes();
    wal_recovery_ = absl::StrJoin(recovery_log_->dropped_lines(), "\n");
  }
  meta_cf_ = handles_[0];
  entries_cf_ = handles_[1];
  ledger_cf_ = handles_[2];
  vectors_cf_ = handles_[3];
  semantic_hits_cf_ = handles_[4];
  feedback_cf_ = handles_[5];
  entry_stats_cf_ = handles_[6];
  // In CacheFamilyNames() order; the bodies family may be absent (above).
  if (handles_.size() > 7) bodies_cf_ = handles_[7];
  bodies_ = std::make_unique<internal::SharedBodies>(db_, bodies_cf_);

  std::string version;
  s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kSchemaKey, &version);
  if (s.IsNotFound()) {
    // A create cut short by a crash (the families exist, the version was
    // not written yet) is finished, never left to fail every open; a
    // database with data but no version is not ours to take over.
    bool empty = true;
    for (rocksdb::ColumnFamilyHandle* family : handles_) {
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), family));
      it->SeekToFirst();
      if (it->Valid() || !it->status().ok()) empty = false;
    }
    if (exists && !empty) {
      return absl::FailedPreconditionError(
          absl::StrCat("cache at '", path_,
                       "' has data but no schema version: not a promptcache "
                       "database"));
    }
    if (options_.read_only) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cache at '", path_,
          "' was never finished (a create cut short): open it writable once"));
    }
    rocksdb::WriteBatch batch;
    batch.Put(meta_cf_, kSchemaKey, std::to_string(kSchemaVersion));
    batch.Put(meta_cf_, kCreatedKey, std::to_string(NowMicros()));
    batch.Put(meta_cf_, kSizedStatsKey, "1");
    if (absl::Status w = FromRocks(db_->Write(write_options_, &batch),
                                   "writing schema version");
        !w.ok()) {
      return w;
    }
  } else if (!s.ok()) {
    return FromRocks(s, "reading schema version");
  } else if (version != std::to_string(kSchemaVersion) &&
             version != kLedgerKeysV1Schema) {
    return absl::FailedPreconditionError(
        absl::StrCat("cache at '", path_, "' has schema version ", version,
                     "; this build reads versions ", kLedgerKeysV1Schema,
                     " and ", kSchemaVersion));
  }
  // Schema 1 joined ledger key fields with NUL, which names could contain;
  // its rows are rewritten with length-prefixed keys (in the same batch as
  // the new version number, so a crash leaves either form whole). A
  // read-only open reads them as they are.
  const bool migrate_ledger_keys =
      version == kLedgerKeysV1Schema && !options_.read_only;

  // Load the ledger.
  {
    absl::MutexLock lock(&write_mu_);
    rocksdb::WriteBatch migration;
    if (absl::Status s = ledger_.Load(db_, ledger_cf_, migrate_ledger_keys,
                                      &migration, &unreadable_ledger_rows_);
        !s.ok()) {
      return s;
    }
    if (migrate_ledger_keys) {
      migration.Put(meta_cf_, kSchemaKey, std::to_string(kSchemaVersion));
      if (absl::Status w = FromRocks(db_->Write(write_options_, &migration),
                                     "rewriting schema-1 ledger keys");
          !w.ok()) {
        return w;
      }
    }
  }
  if (options_.hot_cache_bytes > 0) {
    hot_ = std::make_unique<internal::HotAnswers>(
        options_.hot_cache_bytes,
        std::make_unique<internal::BlockCacheReservation>(
            block_cache_, options_.block_cache_bytes,
            RocksDbFloor(options_.block_cache_bytes)),
        // Counts of answers dropped from the hot set wait with the others.
        // (Lock order: a hot shard, then a hit shard; the hit path never
        // holds both.)
        [this](const Key128& key, const internal::HitCounts& counts) {
          hit_counters_.AddEntryHits(key, counts);
        });
  }
  if (semantic_on()) {
    if (absl::Status s = OpenSemantic(); !s.ok()) return s;
  }
  if (!options_.read_only && options_.max_bytes > 0) {
    if (absl::Status s = LoadEvictionTracker(); !s.ok()) return s;
  }
  if (!options_.read_only &&
      options_.stats_flush_interval < absl::InfiniteDuration()) {
    flusher_ = std::thread([this] { FlushLoop(); });
  }
  if (hot_ != nullptr && options_.warm_hot_cache_on_open) {
    warming_.store(true);
    warmer_ = std::thread([this] { WarmHotAnswers(); });
  }
  return absl::OkStatus();
}

}  // namespace promptcache
