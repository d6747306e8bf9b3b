#include "promptcache/cache.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cache/cache_impl.h"
#include "cache/recovery_log.h"
#include "cache/rocks_util.h"
#include "cost/token_estimate.h"
#include "request/namespace.h"
#include "rocksdb/cache.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "semantic/prompt_analysis.h"
#include "store/entry_stats_merge.h"
#define XXH_STATIC_LINKING_ONLY
#include "xxhash.h"

namespace promptcache {
namespace internal {
namespace {
std::atomic<rocksdb::Env*> env_for_testing{nullptr};
}  // namespace
void SetEnvForTesting(rocksdb::Env* env) { env_for_testing.store(env); }
}  // namespace internal

namespace {

using internal::AsSlice;
using internal::FromRocks;
using internal::KeyBytes;
using internal::NamespaceOf;
using internal::View;

using internal::kBodiesFamily;
using internal::kEntriesFamily;
using internal::kEntryStatsFamily;
using internal::kFeedbackFamily;
using internal::kLedgerFamily;
using internal::kSemanticHitsFamily;
using internal::kVectorsFamily;

// Answers at least this long are stored as shared bodies; shorter ones are
// not worth a second read on a hit.
constexpr char kSchemaKey[] = "schema_version";
// The last schema whose ledger keys were NUL-joined; Open migrates it.
constexpr char kLedgerKeysV1Schema[] = "1";
constexpr char kCreatedKey[] = "created_us";
constexpr int kPurgeBatch = 1000;
// Hit counters written per batch by the stats flush (see FlushStatsLocked).
constexpr size_t kStatsChunk = 4096;
// Set when every entry's hit-counter record carries its budgeted size
// (EntryStats version 2): new databases, and older ones after a one-time
// scan when first opened with a byte budget.
constexpr char kSizedStatsKey[] = "entry_stats_sized";
// Index share per vector beyond its floats: HNSW links (M=16: 32 level-0
// neighbours of 4 bytes, plus upper levels) and bookkeeping.
constexpr int64_t kIndexOverheadPerVector = 192;

// The ledger row of `map` at `key`, named after its namespace, backend and
// model when new (LedgerRow::Add sums counters only).
template <typename Map, typename Key>
LedgerRow& NamedRow(Map& map, const Key& key, absl::string_view ns,
                    absl::string_view backend, absl::string_view model) {
  LedgerRow& row = map[key];
  if (row.backend.empty()) {
    row.ns = std::string(ns);
    row.backend = std::string(backend);
    row.model = std::string(model);
  }
  return row;
}

uint64_t RowHash(absl::string_view ns, absl::string_view backend,
                 absl::string_view model) {
  // Each field hashed on its own, seeded with the hash so far, so that
  // ("ab","c") and ("a","bc") differ. One-shot XXH3 of short strings: this
  // runs on every hit.
  uint64_t h = XXH3_64bits(ns.data(), ns.size());
  h = XXH3_64bits_withSeed(backend.data(), backend.size(), h);
  return XXH3_64bits_withSeed(model.data(), model.size(), h);
}

// The memtables' share of the memory budget: a quarter, within 4-32 MiB
// (more buys little for a cache's small writes).
size_t MemtableBytes(size_t block_cache_bytes) {
  return std::clamp(block_cache_bytes / 4, size_t{4} << 20, size_t{32} << 20);
}

// What the hot answers must leave to RocksDB's own blocks (index, filter
// and data blocks being read): an eighth of the budget, at most 32 MiB.
size_t MinBlockBytes(size_t block_cache_bytes) {
  return std::min(block_cache_bytes / 8, size_t{32} << 20);
}

// What the budget keeps for RocksDB whatever the hot answers hold: the
// memtables and room for blocks.
size_t RocksDbFloor(size_t block_cache_bytes) {
  return MemtableBytes(block_cache_bytes) + MinBlockBytes(block_cache_bytes);
}

// Bytes of the budget the hot answers may take.
size_t HotRoom(size_t block_cache_bytes) {
  return block_cache_bytes -
         std::min(block_cache_bytes, RocksDbFloor(block_cache_bytes));
}

bool IsTemperaturePositive(const Request& r) {
  return r.params.temperature.value_or(1.0) > 0;
}

absl::Time FromMicros(int64_t us, absl::Time if_zero) {
  return us == 0 ? if_zero : absl::FromUnixMicros(us);
}

}  // namespace

size_t BlockCacheBytesFor(size_t hot_cache_bytes) {
  // HotRoom grows with the budget, by at least 5/8 of each added byte.
  size_t mib = std::max<size_t>(1, hot_cache_bytes >> 20);
  while (HotRoom(mib << 20) < hot_cache_bytes) ++mib;
  return mib << 20;
}

Cache::Impl::Impl(std::string path, Options options)
    : path_(std::move(path)), options_(std::move(options)) {
  write_options_.sync = options_.sync_writes;
}

Cache::Impl::~Impl() {
  {
    absl::MutexLock lock(&stop_mu_);
    stop_ = true;
  }
  if (warmer_.joinable()) warmer_.join();
  if (indexer_.joinable()) indexer_.join();
  if (flusher_.joinable()) flusher_.join();
  if (db_ != nullptr) {
    if (!options_.read_only) {
      FlushStats().IgnoreError();
      if (semantic_on()) SaveIndexes();
      // A cleanly closed cache should not depend on replaying its WAL.
      db_->Flush(rocksdb::FlushOptions(), handles_).PermitUncheckedError();
    }
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    db_->Close().PermitUncheckedError();
    delete db_;
  }
}

int64_t Cache::Impl::NowMicros() const {
  return absl::ToUnixMicros(options_.clock());
}

absl::Status Cache::Impl::CheckWritable() const {
  if (options_.read_only) {
    return absl::FailedPreconditionError(
        absl::StrCat("cache at '", path_, "' is open read-only"));
  }
  return absl::OkStatus();
}

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
  if (rocksdb::Env* env = internal::env_for_testing.load(); env != nullptr) {
    db_options.env = env;  // fault injection (tests/fault_injection_test.cc)
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
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), ledger_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      LedgerRow row;
      // One unreadable row (an older build let a NUL into a model name) must
      // not stop the cache: it is left as it is on disk, counted
      // (CacheStats::unreadable_ledger_rows) and kept out of reports.
      if (!internal::SplitLedgerKey(View(it->key()), &row).ok() ||
          !internal::DecodeLedgerRow(View(it->value()), &row).ok()) {
        ++unreadable_ledger_rows_;
        continue;
      }
      const std::string key =
          internal::LedgerKey(row.ns, row.backend, row.model);
      LedgerRow& kept = NamedRow(ledger_, key, row.ns, row.backend, row.model);
      kept.Add(row);
      if (migrate_ledger_keys && internal::IsLegacyLedgerKey(View(it->key()))) {
        migration.Delete(ledger_cf_, it->key());
        migration.Put(ledger_cf_, key, internal::EncodeLedgerRow(kept));
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), "reading ledger");
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
        [this](const Key128& key, const PendingHit& counts) {
          AddPendingHits(key, counts);
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

int64_t Cache::Impl::BudgetedBytes(size_t entry_value_bytes, size_t vector_dim,
                                   size_t vector_text_bytes) const {
  // Key (16 B) + entry, hit-counter record (~40 B with its key).
  int64_t bytes = 16 + static_cast<int64_t>(entry_value_bytes) + 40;
  if (vector_dim > 0) {
    const int64_t floats = static_cast<int64_t>(vector_dim * sizeof(float));
    // The vector record (floats, text, scope/context) and the index copy.
    bytes += 16 + floats + static_cast<int64_t>(vector_text_bytes) + 48;
    bytes += floats + kIndexOverheadPerVector;
  }
  return bytes;
}

int64_t Cache::Impl::CostPerHit(const Request& request,
                                const Response& answer) const {
  const Usage usage = internal::EffectiveUsage(request, answer);
  const ModelPrice* price =
      options_.prices.Find(request.backend, request.model);
  if (price != nullptr) return CostNanoDollars(*price, usage);
  return usage.input_tokens + usage.output_tokens;
}

absl::Status Cache::Impl::LoadEvictionTracker() {
  absl::MutexLock lock(&write_mu_);
  eviction_ = std::make_unique<internal::EvictionTracker>(options_.eviction);
  std::string sized;
  const bool all_sized =
      db_->Get(rocksdb::ReadOptions(), meta_cf_, kSizedStatsKey, &sized).ok();
  if (all_sized) {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), entry_stats_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      internal::EntryStats stats;
      absl::StatusOr<Key128> key = Key128::FromBytes(View(it->key()));
      if (!key.ok() ||
          !internal::DecodeEntryStats(View(it->value()), &stats).ok() ||
          stats.bytes <= 0) {
        continue;  // Counters of an entry stored before sizes were kept.
      }
      eviction_->Upsert(*key, stats.bytes, stats.cost_nusd, stats.expires_us, 0,
                        stats.hits, stats.last_hit_us);
    }
    if (!it->status().ok()) {
      return FromRocks(it->status(), "reading entry sizes");
    }
    return EvictToBudgetLocked();
  }
  // A database from before sizes were kept: measure every entry once and
  // record its size with its counters.
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), entries_cf_));
  rocksdb::WriteBatch batch;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<Key128> key = Key128::FromBytes(View(it->key()));
    absl::StatusOr<internal::StoredEntry> entry =
        internal::DecodeEntry(View(it->value()));
    if (!key.ok() || !entry.ok() || entry->answers.empty()) continue;
    internal::EntryStats stats;
    std::string old;
    if (db_->Get(rocksdb::ReadOptions(), entry_stats_cf_, it->key(), &old)
            .ok()) {
      internal::DecodeEntryStats(old, &stats).IgnoreError();
    }
    size_t dim = 0, text = 0;
    std::string vector_value;
    if (db_->Get(rocksdb::ReadOptions(), vectors_cf_, it->key(), &vector_value)
            .ok()) {
      internal::VectorRecord record;
      if (internal::DecodeVector(vector_value, &record).ok()) {
        dim = record.vector.size();
        text = record.text.size();
      }
    }
    Request request;
    request.backend = entry->backend;
    request.model = entry->model;
    stats.bytes = BudgetedBytes(it->value().size(), dim, text);
    stats.cost_nusd = CostPerHit(request, entry->answers.front());
    stats.expires_us = entry->expires_us;
    batch.Put(entry_stats_cf_, it->key(), internal::EncodeEntryStats(stats));
    eviction_->Upsert(*key, stats.bytes, stats.cost_nusd, stats.expires_us,
                      entry->created_us, stats.hits, stats.last_hit_us);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading entries");
  batch.Put(meta_cf_, kSizedStatsKey, "1");
  if (absl::Status w = FromRocks(db_->Write(write_options_, &batch),
                                 "recording entry sizes");
      !w.ok()) {
    return w;
  }
  return EvictToBudgetLocked();
}

absl::Status Cache::Impl::EvictToBudgetLocked() {
  if (eviction_ == nullptr ||
      eviction_->total_bytes() <= static_cast<int64_t>(options_.max_bytes)) {
    return absl::OkStatus();
  }
  const int64_t target =
      static_cast<int64_t>(static_cast<double>(options_.max_bytes) *
                           options_.eviction_low_watermark);
  const std::vector<internal::EvictionTracker::Slot> victims =
      eviction_->TakeVictims(target, NowMicros());
  // Victims not deleted (a failed write) are tracked again, so that they
  // stay counted and are tried at the next store.
  auto restore_from = [&](size_t first) {
    for (size_t k = first; k < victims.size(); ++k) {
      eviction_->Restore(victims[k]);
    }
  };
  for (size_t i = 0; i < victims.size(); i += kPurgeBatch) {
    rocksdb::WriteBatch batch;
    internal::SharedBodies::Changes bodies;
    std::vector<Key128> removed;
    const size_t end = std::min(victims.size(), i + kPurgeBatch);
    for (size_t j = i; j < end; ++j) {
      const std::array<char, 16> bytes = KeyBytes(victims[j].key);
      std::string value;
      if (db_->Get(rocksdb::ReadOptions(), entries_cf_, AsSlice(bytes), &value)
              .ok()) {
        bodies.UnrefEntry(value);
      }
      batch.Delete(entries_cf_, AsSlice(bytes));
      batch.Delete(entry_stats_cf_, AsSlice(bytes));
      DeleteVector(&batch, victims[j].key, &removed);
    }
    if (absl::Status b = bodies_->Apply(bodies, &batch); !b.ok()) {
      restore_from(i);
      return b;
    }
    if (absl::Status w = FromRocks(WriteResuming(&batch), "evicting entries");
        !w.ok()) {
      restore_from(i);
      return w;
    }
    if (index_ != nullptr) {
      for (const Key128& key : removed) index_->Remove(key);
    }
    for (size_t j = i; j < end; ++j) {
      ForgetHitCounts(victims[j].key);
      ForgetRoundRobin(victims[j].key);
    }
    evicted_ += static_cast<int64_t>(end - i);
  }
  return absl::OkStatus();
}

void Cache::Impl::ForgetRoundRobin(const Key128& key) {
  absl::MutexLock lock(&round_robin_mu_);
  round_robin_.erase(key);
}

bool Cache::Impl::Stopping() {
  absl::MutexLock lock(&stop_mu_);
  return stop_;
}

void Cache::Impl::WarmHotAnswers() {
  // Fill never evicts (what traffic has put there since open stays); the
  // warm-up ends when every shard is full, or the store has been read.
  std::array<bool, internal::HotAnswers::kShards> full{};
  int full_shards = 0;
  const int64_t now = NowMicros();
  std::string resume;
  for (bool done = false; !done && !Stopping();) {
    // In chunks, each from its own snapshot with the shard versions taken
    // just before it, so that a Fill never brings back an answer that a
    // write replaced after it was read; chunks are small so that writes
    // during one (which refuse the rest of its shard's Fills) cost little.
    const std::array<uint64_t, internal::HotAnswers::kShards> versions =
        hot_->Versions();
    const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
    absl::Cleanup release = [&] { db_->ReleaseSnapshot(snapshot); };
    rocksdb::ReadOptions read;
    read.snapshot = snapshot;
    read.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, entries_cf_));
    if (resume.empty()) {
      it->SeekToFirst();
    } else {
      it->Seek(resume);
    }
    for (int n = 0; it->Valid() && n < 256; it->Next(), ++n) {
      absl::StatusOr<Key128> key = Key128::FromBytes(View(it->key()));
      if (!key.ok()) continue;
      const size_t shard = internal::HotAnswers::ShardIndex(*key);
      if (full[shard]) continue;
      Response answer;
      absl::StatusOr<internal::EntryHead> head =
          internal::DecodeAnswer(View(it->value()), 0, &answer);
      // Buckets rotate answers and are never held; expired ones are not
      // served.
      if (!head.ok() || head->answers != 1) continue;
      if (head->expires_us != 0 && now >= head->expires_us) continue;
      if (!head->body_key.empty() &&
          !bodies_->Resolve(head->body_key, &answer, read).ok()) {
        continue;
      }
      if (!hot_->Fill(*key, versions[shard], head->expires_us, answer)) {
        full[shard] = true;
        if (++full_shards == internal::HotAnswers::kShards) {
          done = true;
          break;
        }
      }
    }
    // A read error ends the warm-up: the store serves what is not held.
    if (!it->status().ok() || !it->Valid()) break;
    if (!done) resume = it->key().ToString();
  }
  warming_.store(false);
}

void Cache::Impl::FlushLoop() {
  absl::MutexLock lock(&stop_mu_);
  while (!stop_) {
    if (stop_mu_.AwaitWithTimeout(absl::Condition(&stop_),
                                  options_.stats_flush_interval)) {
      break;
    }
    stop_mu_.Unlock();
    // Retried next interval and on close.
    FlushStats(/*entry_counters_always=*/false).IgnoreError();
    stop_mu_.Lock();
  }
}

void Cache::Impl::NoteFailure(Failure kind, const absl::Status& status) const {
  switch (kind) {
    case Failure::kLookup:
      lookup_errors_.fetch_add(1, std::memory_order_relaxed);
      break;
    case Failure::kEmbedder:
      embedder_errors_.fetch_add(1, std::memory_order_relaxed);
      break;
    case Failure::kStore:
      store_errors_.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  absl::MutexLock lock(&last_error_mu_);
  last_error_ = status.ToString();
}

rocksdb::Status Cache::Impl::WriteResuming(rocksdb::WriteBatch* batch) {
  rocksdb::Status s = db_->Write(write_options_, batch);
  if (s.ok() || s.IsInvalidArgument() || s.IsNotSupported()) return s;
  if (db_->Resume().ok()) s = db_->Write(write_options_, batch);
  return s;
}

absl::StatusOr<Response> Cache::Impl::GetExact(const Key128& key,
                                               int* answers_stored) {
  absl::StatusOr<Response> answer = ReadExact(key, answers_stored);
  if (!answer.ok() && !absl::IsNotFound(answer.status())) {
    NoteFailure(Failure::kLookup, answer.status());
  }
  return answer;
}

absl::StatusOr<Response> Cache::Impl::ReadExact(const Key128& key,
                                                int* answers_stored) {
  const int64_t now = NowMicros();
  Response answer;
  if (hot_ != nullptr && hot_->Get(key, now, &answer)) {
    if (answers_stored != nullptr) *answers_stored = 1;
    answer.entry_key = key.ToHex();
    return answer;
  }
  const uint64_t hot_version = hot_ != nullptr ? hot_->Version(key) : 0;
  const std::array<char, 16> bytes = KeyBytes(key);
  rocksdb::PinnableSlice value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), entries_cf_, AsSlice(bytes), &value);
  if (s.IsNotFound()) return absl::NotFoundError("no entry");
  if (!s.ok()) return FromRocks(s, "reading entry");
  absl::StatusOr<internal::EntryHead> head =
      internal::DecodeAnswer(View(value), 0, &answer);
  if (!head.ok()) return head.status();
  if (head->expires_us != 0 && now >= head->expires_us) {
    return absl::NotFoundError("entry expired");
  }
  if (!head->body_key.empty()) {
    if (absl::Status b = bodies_->Resolve(head->body_key, &answer); !b.ok()) {
      return b;
    }
  }
  // Buckets rotate answers, so only single answers are kept hot.
  if (hot_ != nullptr && head->answers == 1) {
    hot_->Put(key, hot_version, head->expires_us, answer);
  }
  if (head->answers > 1) {
    uint64_t pick;
    {
      absl::MutexLock lock(&round_robin_mu_);
      pick = round_robin_[key]++;
    }
    head = internal::DecodeAnswer(View(value), pick, &answer);
    if (!head.ok()) return head.status();
    if (!head->body_key.empty()) {
      if (absl::Status b = bodies_->Resolve(head->body_key, &answer); !b.ok()) {
        return b;
      }
    }
  }
  if (answers_stored != nullptr) *answers_stored = head->answers;
  answer.entry_key = key.ToHex();
  return answer;
}

void Cache::Impl::ForgetHitCounts(const Key128& key) {
  if (hot_ != nullptr) hot_->Erase(key, /*drop_counts=*/true);
  HitShard& shard = hit_shards_[key.lo % kHitShards];
  internal::LeanMutexLock lock(&shard.mu);
  shard.entries.erase(key);
}

void Cache::Impl::RecordHit(const Request& request, const Key128& entry_key,
                            CacheStatus how, Response* answer) {
  const Usage usage = internal::EffectiveUsage(request, *answer);
  const std::string& ns = NamespaceOf(request);
  const uint64_t price_hash = RowHash(ns, request.backend, request.model);
  HitShard& shard = hit_shards_[entry_key.lo % kHitShards];
  const int64_t now = NowMicros();
  int64_t saved;
  {
    internal::LeanMutexLock lock(&shard.mu);
    // Bounded: names come from callers.
    if (shard.prices.size() > 1024) shard.prices.clear();
    auto [known, added] = shard.prices.try_emplace(price_hash, nullptr);
    if (added) {
      known->second = options_.prices.Find(request.backend, request.model);
    }
    const ModelPrice* price = known->second;
    saved = price ? CostNanoDollars(*price, usage) : 0;
    answer->cache_status = how;
    answer->priced = price != nullptr;
    answer->dollars_saved = saved * 1e-9;
    answer->dollars_spent = 0;
    answer->stored = false;

    const bool pooled = price == nullptr && options_.pool_unpriced_models;
    const absl::string_view model =
        pooled ? absl::string_view(kPooledUnpricedModel) : request.model;
    LedgerRow& row = NamedRow(
        shard.ledger, pooled ? RowHash(ns, request.backend, model) : price_hash,
        ns, request.backend, model);
    row.requests += 1;
    if (how == CacheStatus::kSemanticHit) {
      absl::StatusOr<Key128> request_key = Key128::FromHex(answer->request_key);
      const Message* last = LastUserMessage(request);
      if (request_key.ok()) {
        shard.semantic.push_back(
            {entry_key, *request_key, answer->similarity, now,
             internal::LedgerKey(row.ns, row.backend, row.model),
             last != nullptr ? last->content : std::string()});
      }
    }
    if (how == CacheStatus::kExactHit) row.exact_hits += 1;
    if (how == CacheStatus::kSemanticHit) row.semantic_hits += 1;
    if (how == CacheStatus::kCoalesced) row.coalesced += 1;
    row.input_tokens_served += usage.input_tokens;
    row.output_tokens_served += usage.output_tokens;
    row.saved_nusd += saved;
    if (price == nullptr) row.unpriced_events += 1;
    if (usage.estimated) row.estimated_events += 1;
    row.upstream_us_saved +=
        absl::ToInt64Microseconds(answer->upstream_latency);
  }
  if (how == CacheStatus::kCoalesced) return;
  // The entry's own counter: with its answer when held hot (no other map
  // probed), else with the ledger's. Not under the shard's lock: the hot
  // answers' counts sink takes it under a hot shard's lock.
  if (hot_ != nullptr && hot_->CountHit(entry_key, now, saved)) return;
  AddPendingHits(entry_key, {1, now, saved});
}

void Cache::Impl::AddPendingHits(const Key128& key, const PendingHit& counts) {
  HitShard& shard = hit_shards_[key.lo % kHitShards];
  internal::LeanMutexLock lock(&shard.mu);
  shard.entries[key].Add(counts);
}

absl::string_view Cache::Impl::LedgerModel(const Request& request) const {
  if (options_.pool_unpriced_models &&
      options_.prices.Find(request.backend, request.model) == nullptr) {
    return kPooledUnpricedModel;
  }
  return request.model;
}

LedgerRow& Cache::Impl::PendingRow(HitShard& shard, const Request& request) {
  const std::string& ns = NamespaceOf(request);
  const absl::string_view model = LedgerModel(request);
  return NamedRow(shard.ledger, RowHash(ns, request.backend, model), ns,
                  request.backend, model);
}

LedgerRow Cache::Impl::MissDelta(const Request& request, Response* answer) {
  LedgerRow delta;
  delta.ns = NamespaceOf(request);
  delta.backend = request.backend;
  delta.model = std::string(LedgerModel(request));
  delta.requests = 1;
  delta.misses = 1;
  if (answer == nullptr) {
    delta.upstream_errors = 1;
    return delta;
  }
  const Usage usage = internal::EffectiveUsage(request, *answer);
  const ModelPrice* price =
      options_.prices.Find(request.backend, request.model);
  const int64_t spent = price ? CostNanoDollars(*price, usage) : 0;
  delta.spent_nusd = spent;
  delta.unpriced_events = price ? 0 : 1;
  delta.estimated_events = usage.estimated ? 1 : 0;
  delta.upstream_us_spent = absl::ToInt64Microseconds(answer->upstream_latency);
  answer->priced = price != nullptr;
  answer->dollars_spent = spent * 1e-9;
  answer->dollars_saved = 0;
  return delta;
}

void Cache::Impl::AddLedgerDelta(const LedgerRow& delta) {
  NamedRow(ledger_, internal::LedgerKey(delta.ns, delta.backend, delta.model),
           delta.ns, delta.backend, delta.model)
      .Add(delta);
}

absl::Status Cache::Impl::WriteBatchWithLedger(rocksdb::WriteBatch* batch,
                                               const LedgerRow& delta) {
  const std::string key =
      internal::LedgerKey(delta.ns, delta.backend, delta.model);
  LedgerRow row;
  if (auto it = ledger_.find(key); it != ledger_.end()) row = it->second;
  row.Add(delta);
  batch->Put(ledger_cf_, key, internal::EncodeLedgerRow(row));
  absl::Status s = FromRocks(WriteResuming(batch), "write");
  if (s.ok()) AddLedgerDelta(delta);
  return s;
}

absl::Status Cache::Impl::StoreMiss(const Request& request,
                                    const CanonicalizedRequest& canonical,
                                    std::optional<absl::Duration> ttl,
                                    bool replace,
                                    const std::vector<float>* query_vector,
                                    Response* answer) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  if (!IsCompleteFinishReason(answer->finish_reason)) {
    return absl::FailedPreconditionError(
        absl::StrCat("answer with finish reason '", answer->finish_reason,
                     "' is incomplete and not cached"));
  }
  const absl::Duration lifetime = ttl.value_or(options_.default_ttl);
  if (lifetime <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("TTL must be positive");
  }
  LedgerRow delta = MissDelta(request, answer);
  // Admission: an answer whose hit would save too little for its size is
  // answered but not kept.
  // A forced refresh replaces a stored answer: refusing it would keep
  // serving the old one.
  if (options_.min_dollars_saved_per_kib > 0 && answer->priced && !replace) {
    const double kib =
        static_cast<double>(canonical.canonical.size() + answer->text.size() +
                            answer->tool_calls_json.size() + 64) /
        1024.0;
    if (answer->dollars_spent / kib < options_.min_dollars_saved_per_kib) {
      not_admitted_.fetch_add(1, std::memory_order_relaxed);
      return RecordUnstoredMiss(request, answer, /*coalesced=*/false);
    }
  }
  // Embed outside the write lock; a failed embedding stores the entry for
  // the exact tier only.
  std::vector<float> vector;
  const Message* last = LastUserMessage(request);
  const bool with_vector =
      semantic_on() && last != nullptr && !last->content.empty() &&
      (query_vector != nullptr ? !query_vector->empty()
                               : !TooLongForSemantic(*last) &&
                                     EmbedChecked(last->content, &vector).ok());
  if (with_vector && query_vector != nullptr) vector = *query_vector;
  if (with_vector && query_vector == nullptr) {
    ChargeEmbedding(request, last->content);
  }
  delta.stored = 1;
  const int64_t now = NowMicros();
  const std::array<char, 16> key_bytes = KeyBytes(canonical.keys.exact);

  absl::MutexLock lock(&write_mu_);
  internal::StoredEntry entry;
  std::string old_value;
  rocksdb::Status got = db_->Get(rocksdb::ReadOptions(), entries_cf_,
                                 AsSlice(key_bytes), &old_value);
  if (!got.ok() && !got.IsNotFound()) {
    // An entry that cannot be read (a corrupt block) is replaced: refusing
    // would leave the key failing for good. Its shared bodies, if any, keep
    // one reference too many (kept longer, never served wrongly).
    NoteFailure(Failure::kLookup, FromRocks(got, "reading entry to replace"));
    got = rocksdb::Status::NotFound();
  }
  bool appended = false;
  if (got.ok()) {
    absl::StatusOr<internal::StoredEntry> old =
        internal::DecodeEntry(old_value);
    if (old.ok()) {
      const bool live = old->expires_us == 0 || now < old->expires_us;
      // A bucket fills with distinct answers until it holds N.
      if (live && !replace && options_.max_answers_per_key > 1 &&
          IsTemperaturePositive(request) &&
          static_cast<int>(old->answers.size()) <
              options_.max_answers_per_key) {
        entry = *std::move(old);
        appended = true;
      } else {
        // Keep the key's history so that entries and ledger stay summable.
        entry.hit_count = old->hit_count;
        entry.saved_nusd = old->saved_nusd;
        entry.last_hit_us = old->last_hit_us;
      }
    }
  }
  if (!appended) {
    entry.created_us = now;
    // A lifetime past year 292,277 (int64 microseconds) is forever, not an
    // overflow into the past.
    const int64_t lifetime_us = absl::ToInt64Microseconds(lifetime);
    entry.expires_us =
        lifetime == absl::InfiniteDuration() ||
                lifetime_us >= std::numeric_limits<int64_t>::max() - now
            ? 0
            : now + lifetime_us;
    entry.ns = NamespaceOf(request);
    entry.backend = request.backend;
    entry.model = request.model;
    entry.canonical_request = canonical.canonical;
    entry.answers.clear();
  }
  const int64_t cost_per_hit = CostPerHit(request, *answer);
  Response stored = *answer;
  stored.cache_status = CacheStatus::kMiss;
  stored.dollars_saved = stored.dollars_spent = 0;
  stored.priced = stored.stored = false;
  stored.entry_key.clear();
  entry.answers.push_back(std::move(stored));
  // A long answer is stored once, shared by every prompt with the same
  // answer; the entry keeps its key.
  internal::SharedBodies::Changes bodies;
  entry.body_keys.resize(entry.answers.size() - 1);
  std::string new_body_key;
  int64_t new_body_bytes = 0;
  if (bodies_->enabled() &&
      entry.answers.back().text.size() >= internal::SharedBodies::kMinBytes) {
    new_body_bytes = static_cast<int64_t>(entry.answers.back().text.size());
    new_body_key = internal::SharedBodies::KeyOf(entry.answers.back().text);
    bodies.Ref(new_body_key, entry.answers.back().text);
    entry.answers.back().text.clear();
  }
  entry.body_keys.push_back(new_body_key);
  if (got.ok() && !appended) bodies.UnrefEntry(old_value);
  rocksdb::WriteBatch batch;
  if (absl::Status b = bodies_->Apply(bodies, &batch); !b.ok()) {
    NoteFailure(Failure::kStore, b);
    return b;
  }
  const std::string encoded = internal::EncodeEntry(entry);
  batch.Put(entries_cf_, AsSlice(key_bytes), encoded);
  const bool add_vector = with_vector && !appended;
  if (add_vector) {
    PutVector(&batch, canonical.keys.exact, canonical.keys, vector,
              last->content);
  }
  // The hit counters (kept across a replacement) with the entry's size,
  // cost and expiry, which eviction reads without the entry.
  internal::EntryStats stats;
  {
    std::string old_stats;
    if (db_->Get(rocksdb::ReadOptions(), entry_stats_cf_, AsSlice(key_bytes),
                 &old_stats)
            .ok()) {
      internal::DecodeEntryStats(old_stats, &stats).IgnoreError();
    }
  }
  // Every entry is charged its bodies in full, shared or not: the budget
  // over-counts shared bodies rather than lose track of one whose creator
  // is gone (the disk can only be below the count).
  if (appended && stats.bytes > 0) {
    stats.bytes += static_cast<int64_t>(encoded.size()) -
                   static_cast<int64_t>(old_value.size()) + new_body_bytes;
  } else {
    stats.bytes = BudgetedBytes(encoded.size(), with_vector ? vector.size() : 0,
                                with_vector ? last->content.size() : 0) +
                  new_body_bytes;
  }
  stats.cost_nusd = cost_per_hit;
  stats.expires_us = entry.expires_us;
  batch.Put(entry_stats_cf_, AsSlice(key_bytes),
            internal::EncodeEntryStats(stats));
  if (absl::Status s = WriteBatchWithLedger(&batch, delta); !s.ok()) {
    NoteFailure(Failure::kStore, s);
    return s;
  }
  // After the write: a reader that raced it cannot put the old answer back.
  // A single answer goes straight in (the premise of a cache is that it is
  // asked again; its first hit then needs no store read). Buckets rotate
  // answers, so they are never held.
  if (hot_ != nullptr && entry.answers.size() == 1) {
    hot_->Replace(canonical.keys.exact, entry.expires_us, *answer);
  } else if (hot_ != nullptr) {
    hot_->Erase(canonical.keys.exact);
  }
  if (add_vector) {
    index_->AddLater(canonical.keys.scope, canonical.keys.exact,
                     canonical.keys.context,
                     internal::NumberSignature(last->content), vector.data());
  }
  answer->stored = true;
  answer->entry_key = canonical.keys.exact.ToHex();
  if (eviction_ != nullptr) {
    eviction_->Upsert(canonical.keys.exact, stats.bytes, stats.cost_nusd,
                      stats.expires_us, now, stats.hits, stats.last_hit_us);
    // The answer is stored and returned either way; a failed eviction is
    // retried on the next store.
    EvictToBudgetLocked().IgnoreError();
  }
  return absl::OkStatus();
}

absl::Status Cache::Impl::RecordUnstoredMiss(const Request& request,
                                             Response* answer, bool coalesced) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  LedgerRow delta = MissDelta(request, answer);
  if (coalesced) {
    // The leader counted the miss and the failed upstream call.
    delta.misses = 0;
    delta.upstream_errors = 0;
  }
  if (answer != nullptr) answer->stored = false;
  absl::MutexLock lock(&write_mu_);
  rocksdb::WriteBatch batch;
  return WriteBatchWithLedger(&batch, delta);
}

absl::Status Cache::Impl::FlushStats(bool entry_counters_always) {
  if (options_.read_only) return absl::OkStatus();
  absl::MutexLock flush_lock(&flush_mu_);
  const absl::Time now = absl::Now();
  const bool entry_counters =
      entry_counters_always ||
      now - entry_stats_flushed_ >= options_.entry_stats_flush_interval;
  // Taken before the shards are emptied: an interval is from one emptying
  // to the next.
  if (entry_counters) entry_stats_flushed_ = now;
  absl::MutexLock lock(&write_mu_);
  return FlushStatsLocked(entry_counters);
}

absl::Status Cache::Impl::FlushStatsLocked(bool entry_counters) {
  // A key is always counted in the same shard, so the shards' counters are
  // concatenated, and merged only with the hot answers' below. The vector and
  // the shards' spare maps keep their capacity from flush to flush: at a
  // million hits a second they are tens of MB, which, allocated and freed every
  // second, fragment the heap.
  std::vector<std::pair<Key128, PendingHit>>& hits = flush_hits_;
  if (hits.capacity() > 4 * std::max<size_t>(hits.size(), 4096)) {
    hits = {};  // the last flush was far smaller than an earlier burst
  }
  hits.clear();
  absl::flat_hash_map<std::string, LedgerRow> deltas;
  std::vector<PendingSemanticHit> semantic;
  for (HitShard& shard : hit_shards_) {
    internal::HugePageHashMap<Key128, PendingHit> shard_entries;
    absl::flat_hash_map<uint64_t, LedgerRow> shard_ledger;
    std::vector<PendingSemanticHit> shard_semantic;
    {
      // Taken out whole and copied without the lock: hits on this shard
      // wait for a few swaps, not for the copy.
      internal::LeanMutexLock lock(&shard.mu);
      if (entry_counters) {
        shard_entries.swap(shard.entries);
        shard.entries.swap(shard.spare);
      }
      shard_ledger.swap(shard.ledger);
      shard_semantic.swap(shard.semantic);
    }
    for (PendingSemanticHit& hit : shard_semantic) {
      semantic.push_back(std::move(hit));
    }
    if (entry_counters) {
      hits.insert(hits.end(), shard_entries.begin(), shard_entries.end());
      if (shard_entries.capacity() >
          4 * std::max<size_t>(shard_entries.size(), 4096)) {
        shard_entries = {};  // a burst is over: give its memory back
      } else {
        // erase() keeps the slot array where clear() would free a large one.
        shard_entries.erase(shard_entries.begin(), shard_entries.end());
      }
      internal::LeanMutexLock lock(&shard.mu);
      shard.spare.swap(shard_entries);
    }
    for (auto& [hash, row] : shard_ledger) {
      NamedRow(deltas, internal::LedgerKey(row.ns, row.backend, row.model),
               row.ns, row.backend, row.model)
          .Add(row);
    }
  }
  const bool take_hot = entry_counters && hot_ != nullptr;
  if (hits.empty() && deltas.empty() && semantic.empty() && !take_hot) {
    return absl::OkStatus();
  }
  // In key order (KeyBytes is big-endian hi, lo): a memtable insert then
  // starts from the previous one's position. In hash order each insert
  // searched the skip list from the top, a few us of cache misses; at 370k
  // hits/s on distinct keys that was 40% of the CPU next to the hits.
  // Sorted without the write lock (tens of ms for a million keys), as the
  // chunks below give it up: hits of entries evicted meanwhile are skipped
  // there, and purges wait for flush_mu_.
  write_mu_.Unlock();
  if (take_hot) hot_->TakeHitCounts(&hits);
  std::sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) {
    return a.first.hi != b.first.hi ? a.first.hi < b.first.hi
                                    : a.first.lo < b.first.lo;
  });
  // A key can be counted both with its hot answer and in a shard (hits
  // served from the store before it was held, counts of a dropped answer):
  // one merge operand for both.
  size_t distinct = 0;
  for (size_t i = 0; i < hits.size(); ++i) {
    if (distinct > 0 && hits[distinct - 1].first == hits[i].first) {
      hits[distinct - 1].second.Add(hits[i].second);
    } else {
      hits[distinct++] = hits[i];
    }
  }
  hits.resize(distinct);
  write_mu_.Lock();
  if (hits.empty() && deltas.empty() && semantic.empty()) {
    return absl::OkStatus();
  }

  // Counters are written in chunks, with the write lock released between
  // them: a backlog of a million hit entries must not hold up stores and
  // misses for the seconds it takes to write.
  size_t next = 0;
  for (bool first = true; first || next < hits.size(); first = false) {
    rocksdb::WriteBatch batch;
    absl::flat_hash_map<std::string, internal::SemanticHitRecord> logs;
    if (first) {
      // Semantic hit log: entry + request -> similarity, count, time, names.
      for (const PendingSemanticHit& hit : semantic) {
        const std::string key = hit.entry.ToBytes() + hit.request.ToBytes();
        auto [it, inserted] = logs.try_emplace(key);
        internal::SemanticHitRecord& record = it->second;
        if (inserted) {
          std::string old;
          if (db_->Get(rocksdb::ReadOptions(), semantic_hits_cf_, key, &old)
                  .ok()) {
            internal::DecodeSemanticHit(old, &record).IgnoreError();
          }
        }
        record.count += 1;
        record.similarity = hit.similarity;
        record.last_us = std::max(record.last_us, hit.time_us);
        record.ledger_key = hit.ledger_key;
        record.query = hit.query;
      }
      for (const auto& [key, record] : logs) {
        batch.Put(semantic_hits_cf_, key, internal::EncodeSemanticHit(record));
      }
      for (auto& [key, delta] : deltas) {
        LedgerRow row;
        if (auto it = ledger_.find(key); it != ledger_.end()) row = it->second;
        row.Add(delta);
        batch.Put(ledger_cf_, key, internal::EncodeLedgerRow(row));
      }
    }
    const size_t end = std::min(hits.size(), next + kStatsChunk);
    for (size_t i = next; i < end; ++i) {
      const auto& [key, hit] = hits[i];
      // Hits of an entry evicted meanwhile: nothing to count them on.
      if (eviction_ != nullptr && !eviction_->Contains(key)) continue;
      // Added by the family's merge operator: no read.
      batch.Merge(entry_stats_cf_, AsSlice(KeyBytes(key)),
                  internal::EncodeEntryStatsDelta(
                      {hit.hits, hit.last_hit_us, hit.saved_nusd}));
    }
    absl::Status s = FromRocks(WriteResuming(&batch), "writing hit statistics");
    if (!s.ok()) {
      // Put the unwritten counts back so that a later flush retries them.
      for (size_t i = next; i < hits.size(); ++i) {
        AddPendingHits(hits[i].first, hits[i].second);
      }
      if (first) {
        for (auto& [key, delta] : deltas) {
          HitShard& shard = hit_shards_[0];
          internal::LeanMutexLock lock(&shard.mu);
          NamedRow(shard.ledger, RowHash(delta.ns, delta.backend, delta.model),
                   delta.ns, delta.backend, delta.model)
              .Add(delta);
        }
        // Semantic hit records too, or their feedback could never be given.
        HitShard& shard = hit_shards_[0];
        internal::LeanMutexLock lock(&shard.mu);
        for (PendingSemanticHit& hit : semantic) {
          shard.semantic.push_back(std::move(hit));
        }
      }
      return s;
    }
    if (first) {
      for (auto& [key, delta] : deltas) AddLedgerDelta(delta);
    }
    if (eviction_ != nullptr) {
      for (size_t i = next; i < end; ++i) {
        eviction_->Touch(hits[i].first, hits[i].second.hits,
                         hits[i].second.last_hit_us);
      }
    }
    next = end;
    if (next < hits.size()) {
      // Let waiting writers in between chunks (absl::Mutex is not fair: an
      // immediate re-lock would win again).
      write_mu_.Unlock();
      absl::SleepFor(absl::Microseconds(200));
      write_mu_.Lock();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SavingsReport> Cache::Impl::Report() {
  // The ledger only: a report polled every second must not write every
  // hit entry's counter each time.
  if (absl::Status s = FlushStats(/*entry_counters_always=*/false); !s.ok()) {
    return s;
  }
  SavingsReport report;
  report.prices_date = options_.prices.prices_date();
  {
    absl::MutexLock lock(&write_mu_);
    for (const auto& [key, row] : ledger_) report.rows.push_back(row);
  }
  std::sort(report.rows.begin(), report.rows.end(),
            [](const LedgerRow& a, const LedgerRow& b) {
              return std::tie(a.ns, a.backend, a.model) <
                     std::tie(b.ns, b.backend, b.model);
            });
  for (const LedgerRow& row : report.rows) report.total.Add(row);
  return report;
}

EntryInfo Cache::Impl::ToInfo(const Key128& key, internal::StoredEntry e,
                              size_t stored_bytes,
                              const internal::EntryStats& stats,
                              const rocksdb::ReadOptions& read) const {
  for (size_t i = 0; i < e.body_keys.size() && i < e.answers.size(); ++i) {
    // A body deleted meanwhile leaves the text empty; the entry is going.
    if (!e.body_keys[i].empty()) {
      bodies_->Resolve(e.body_keys[i], &e.answers[i], read).IgnoreError();
    }
  }
  e.hit_count += stats.hits;
  e.saved_nusd += stats.saved_nusd;
  e.last_hit_us = std::max(e.last_hit_us, stats.last_hit_us);
  EntryInfo info;
  info.key = key;
  info.ns = std::move(e.ns);
  info.backend = std::move(e.backend);
  info.model = std::move(e.model);
  info.canonical_request = std::move(e.canonical_request);
  info.answers = std::move(e.answers);
  info.created = absl::FromUnixMicros(e.created_us);
  info.expires = FromMicros(e.expires_us, absl::InfiniteFuture());
  info.last_hit = FromMicros(e.last_hit_us, absl::InfinitePast());
  info.hit_count = e.hit_count;
  info.saved_nusd = e.saved_nusd;
  info.size_bytes = static_cast<int64_t>(stored_bytes);
  return info;
}

absl::StatusOr<EntryInfo> Cache::Impl::Inspect(const Key128& key) {
  if (absl::Status s = FlushStats(); !s.ok()) return s;
  const std::array<char, 16> bytes = KeyBytes(key);
  std::string value;
  // One consistent view: the entry and its shared body together.
  rocksdb::ReadOptions read;
  read.snapshot = db_->GetSnapshot();
  absl::Cleanup release = [&] { db_->ReleaseSnapshot(read.snapshot); };
  rocksdb::Status s = db_->Get(read, entries_cf_, AsSlice(bytes), &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("no entry with key ", key.ToHex()));
  }
  if (!s.ok()) return FromRocks(s, "reading entry");
  absl::StatusOr<internal::StoredEntry> entry = internal::DecodeEntry(value);
  if (!entry.ok()) return entry.status();
  internal::EntryStats stats;
  std::string stats_value;
  if (db_->Get(rocksdb::ReadOptions(), entry_stats_cf_, AsSlice(bytes),
               &stats_value)
          .ok()) {
    internal::DecodeEntryStats(stats_value, &stats).IgnoreError();
  }
  return ToInfo(key, *std::move(entry), value.size() + bytes.size(), stats,
                read);
}

absl::Status Cache::Impl::ForEachEntry(
    const std::function<bool(const EntryInfo&)>& fn) {
  if (absl::Status s = FlushStats(); !s.ok()) return s;
  // One consistent view: an export never sees an entry without its body.
  rocksdb::ReadOptions read;
  read.snapshot = db_->GetSnapshot();
  absl::Cleanup release = [&] { db_->ReleaseSnapshot(read.snapshot); };
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, entries_cf_));
  // Both families are keyed by entry key: walk them side by side.
  std::unique_ptr<rocksdb::Iterator> stats_it(
      db_->NewIterator(read, entry_stats_cf_));
  stats_it->SeekToFirst();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<Key128> key = Key128::FromBytes(View(it->key()));
    if (!key.ok()) {
      return absl::DataLossError("malformed entry key in the entries family");
    }
    while (stats_it->Valid() && stats_it->key().compare(it->key()) < 0) {
      stats_it->Next();
    }
    internal::EntryStats stats;
    if (stats_it->Valid() && stats_it->key() == it->key()) {
      internal::DecodeEntryStats(View(stats_it->value()), &stats).IgnoreError();
    }
    absl::StatusOr<internal::StoredEntry> entry =
        internal::DecodeEntry(View(it->value()));
    if (!entry.ok()) {
      return absl::DataLossError(
          absl::StrCat("entry ", key->ToHex(), ": ", entry.status().message()));
    }
    if (!fn(ToInfo(*key, *std::move(entry),
                   it->key().size() + it->value().size(), stats, read))) {
      break;
    }
  }
  return FromRocks(it->status(), "reading entries");
}

Cache::MemoryStats Cache::Impl::GetMemoryStats() {
  Cache::MemoryStats m;
  m.budget_bytes = static_cast<int64_t>(options_.block_cache_bytes);
  m.used_bytes = static_cast<int64_t>(block_cache_->GetUsage());
  if (hot_ != nullptr) {
    m.hot_answer_bytes = static_cast<int64_t>(hot_->bytes());
    m.used_bytes += m.hot_answer_bytes;
    m.hot_answers = static_cast<int64_t>(hot_->items());
  }
  m.warming = warming_.load();
  if (uint64_t memtables = 0; db_->GetAggregatedIntProperty(
          rocksdb::DB::Properties::kSizeAllMemTables, &memtables)) {
    m.memtable_bytes = static_cast<int64_t>(memtables);
  }
  return m;
}

absl::StatusOr<CacheStats> Cache::Impl::Stats() {
  CacheStats stats;
  stats.unreadable_ledger_rows = unreadable_ledger_rows_;
  const int64_t now = NowMicros();
  absl::Status s = ForEachEntry([&](const EntryInfo& e) {
    stats.entries += 1;
    if (e.expires != absl::InfiniteFuture() &&
        absl::ToUnixMicros(e.expires) <= now) {
      stats.expired_entries += 1;
    }
    stats.answers += static_cast<int64_t>(e.answers.size());
    stats.entry_bytes += e.size_bytes;
    stats.hits_recorded += e.hit_count;
    return true;
  });
  // A damaged store still reports what it can, and says so.
  if (!s.ok()) stats.scan_error = s.ToString();
  std::error_code ec;
  for (const auto& file :
       std::filesystem::recursive_directory_iterator(path_, ec)) {
    if (file.is_regular_file(ec)) {
      stats.disk_bytes += static_cast<int64_t>(file.file_size(ec));
    }
  }
  {
    absl::MutexLock lock(&write_mu_);
    if (eviction_ != nullptr) stats.budgeted_bytes = eviction_->total_bytes();
    stats.evicted_entries = evicted_;
  }
  stats.not_admitted = not_admitted_.load(std::memory_order_relaxed);
  stats.wal_bytes_dropped = wal_bytes_dropped_;
  stats.wal_recovery = wal_recovery_;
  stats.lookup_errors = lookup_errors_.load(std::memory_order_relaxed);
  stats.embedder_errors = embedder_errors_.load(std::memory_order_relaxed);
  stats.store_errors = store_errors_.load(std::memory_order_relaxed);
  {
    absl::MutexLock lock(&last_error_mu_);
    stats.last_error = last_error_;
  }
  absl::StatusOr<internal::SharedBodies::Totals> bodies = bodies_->Count();
  if (!bodies.ok()) return bodies.status();
  stats.shared_bodies = bodies->bodies;
  stats.shared_body_bytes = bodies->bytes;
  stats.shared_body_refs = bodies->refs;
  return stats;
}

namespace {

bool MatchesPurge(const PurgeFilter& filter, absl::string_view ns,
                  int64_t created_us, int64_t expires_us, int64_t now_us) {
  if (filter.ns.has_value() && ns != *filter.ns) return false;
  if (filter.created_before.has_value() &&
      absl::FromUnixMicros(created_us) >= *filter.created_before) {
    return false;
  }
  if (filter.expired_only && (expires_us == 0 || expires_us > now_us)) {
    return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<int64_t> Cache::Impl::Purge(const PurgeFilter& filter) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  if (absl::Status s = FlushStats(); !s.ok()) return s;
  const int64_t now = NowMicros();
  std::vector<std::string> candidates;
  absl::Status s = ForEachEntry([&](const EntryInfo& e) {
    const int64_t expires =
        e.expires == absl::InfiniteFuture() ? 0 : absl::ToUnixMicros(e.expires);
    if (MatchesPurge(filter, e.ns, absl::ToUnixMicros(e.created), expires,
                     now)) {
      candidates.push_back(e.key.ToBytes());
    }
    return true;
  });
  if (!s.ok()) return s;
  // No flush may be between two of its chunks while entries go.
  absl::MutexLock flush_lock(&flush_mu_);
  absl::MutexLock lock(&write_mu_);
  int64_t deleted = 0;
  for (size_t i = 0; i < candidates.size(); i += kPurgeBatch) {
    rocksdb::WriteBatch batch;
    internal::SharedBodies::Changes bodies;
    std::vector<Key128> removed, doomed;
    for (size_t j = i; j < std::min(candidates.size(), i + kPurgeBatch); ++j) {
      // Decide again under the write lock: the entry may have been stored
      // afresh since the scan (a refresh of an expired entry).
      std::string value;
      if (!db_->Get(rocksdb::ReadOptions(), entries_cf_, candidates[j], &value)
               .ok()) {
        continue;
      }
      absl::StatusOr<internal::StoredEntry> entry =
          internal::DecodeEntry(value);
      if (entry.ok() && !MatchesPurge(filter, entry->ns, entry->created_us,
                                      entry->expires_us, now)) {
        continue;
      }
      batch.Delete(entries_cf_, candidates[j]);
      batch.Delete(entry_stats_cf_, candidates[j]);
      bodies.UnrefEntry(value);
      const Key128 key = *Key128::FromBytes(candidates[j]);
      DeleteVector(&batch, key, &removed);
      doomed.push_back(key);
    }
    if (absl::Status b = bodies_->Apply(bodies, &batch); !b.ok()) {
      return b;
    }
    if (absl::Status w = FromRocks(WriteResuming(&batch), "deleting entries");
        !w.ok()) {
      return w;
    }
    if (index_ != nullptr) {
      for (const Key128& key : removed) index_->Remove(key);
    }
    for (const Key128& key : doomed) {
      ForgetHitCounts(key);
      if (eviction_ != nullptr) eviction_->Remove(key);
      ForgetRoundRobin(key);
    }
    deleted += static_cast<int64_t>(doomed.size());
  }
  return deleted;
}

absl::Status Cache::Impl::WriteEntries(
    const std::vector<ImportedEntry>& items) {
  absl::MutexLock lock(&write_mu_);
  rocksdb::WriteBatch batch;
  std::vector<std::pair<Key128, internal::EntryStats>> sized;
  internal::SharedBodies::Changes bodies;
  absl::flat_hash_set<Key128> replaced;
  for (const ImportedEntry& item : items) {
    // An entry replaced by the import releases its shared bodies, once even
    // when the import holds the key twice (imported values are inline).
    std::string old;
    if (replaced.insert(item.keys.exact).second &&
        db_->Get(rocksdb::ReadOptions(), entries_cf_,
                 AsSlice(KeyBytes(item.keys.exact)), &old)
            .ok()) {
      bodies.UnrefEntry(old);
    }
    batch.Put(entries_cf_, AsSlice(KeyBytes(item.keys.exact)), item.value);
    // The imported entry carries its hit counts; old counters would double.
    // Fresh counters carry its size for the byte budget.
    internal::EntryStats stats;
    absl::StatusOr<internal::StoredEntry> entry =
        internal::DecodeEntry(item.value);
    if (entry.ok() && !entry->answers.empty()) {
      Request request;
      request.backend = entry->backend;
      request.model = entry->model;
      stats.bytes = BudgetedBytes(item.value.size(), item.vector.size(),
                                  item.vector.empty() ? 0 : item.text.size());
      stats.cost_nusd = CostPerHit(request, entry->answers.front());
      stats.expires_us = entry->expires_us;
      sized.emplace_back(item.keys.exact, stats);
    }
    batch.Put(entry_stats_cf_, AsSlice(KeyBytes(item.keys.exact)),
              internal::EncodeEntryStats(stats));
    if (!item.vector.empty()) {
      PutVector(&batch, item.keys.exact, item.keys, item.vector, item.text);
    }
  }
  if (absl::Status b = bodies_->Apply(bodies, &batch); !b.ok()) {
    return b;
  }
  absl::Status s = FromRocks(WriteResuming(&batch), "writing entries");
  if (!s.ok()) return s;
  for (const ImportedEntry& item : items) {
    ForgetHitCounts(item.keys.exact);  // the import reset its counters
    if (!item.vector.empty()) {
      index_->Add(item.keys.scope, item.keys.exact, item.keys.context,
                  internal::NumberSignature(item.text), item.vector.data());
    }
  }
  if (eviction_ != nullptr) {
    const int64_t now = NowMicros();
    for (const auto& [key, stats] : sized) {
      eviction_->Upsert(key, stats.bytes, stats.cost_nusd, stats.expires_us,
                        now);
    }
    return EvictToBudgetLocked();
  }
  return absl::OkStatus();
}

// --- Cache: forwards to Impl ---

Cache::Cache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Cache::~Cache() = default;

absl::StatusOr<std::unique_ptr<Cache>> Cache::Open(const std::string& path,
                                                   const Options& options) {
  auto impl = std::make_unique<Impl>(path, options);
  if (absl::Status s = impl->Open(); !s.ok()) return s;
  return std::unique_ptr<Cache>(new Cache(std::move(impl)));
}

const Options& Cache::options() const { return impl_->options(); }
const std::string& Cache::path() const { return impl_->path(); }
absl::StatusOr<Response> Cache::GetExact(const Key128& key, int* answers) {
  return impl_->GetExact(key, answers);
}
void Cache::RecordHit(const Request& request, const Key128& entry_key,
                      CacheStatus how, Response* answer) {
  impl_->RecordHit(request, entry_key, how, answer);
}
absl::Status Cache::StoreMiss(const Request& request,
                              const CanonicalizedRequest& canonical,
                              std::optional<absl::Duration> ttl,
                              Response* answer, bool replace,
                              const std::vector<float>* query_vector) {
  return impl_->StoreMiss(request, canonical, ttl, replace, query_vector,
                          answer);
}
absl::StatusOr<Response> Cache::FindSemantic(const Request& request,
                                             const RequestKeys& keys,
                                             std::optional<double> threshold,
                                             std::vector<float>* query_vector) {
  return impl_->FindSemantic(request, keys, threshold, query_vector);
}
absl::Status Cache::ReportFalseHit(const Key128& request_key,
                                   const Key128& entry_key) {
  return impl_->ReportFalseHit(request_key, entry_key);
}
absl::Status Cache::ConfirmSemanticHit(const Key128& request_key,
                                       const Key128& entry_key) {
  return impl_->ConfirmSemanticHit(request_key, entry_key);
}
absl::StatusOr<Cache::SemanticExplanation> Cache::ExplainSemantic(
    const Request& request, std::optional<double> threshold) {
  return impl_->ExplainSemantic(request, threshold);
}
absl::StatusOr<std::vector<Cache::SemanticHitInfo>> Cache::SemanticHitsOf(
    const Key128& entry_key) {
  return impl_->SemanticHitsOf(entry_key);
}
void Cache::WaitForSemanticIndex() { impl_->WaitForSemanticIndex(); }
Cache::SemanticStats Cache::GetSemanticStats() {
  return impl_->GetSemanticStats();
}
absl::Status Cache::RecordUnstoredMiss(const Request& request, Response* answer,
                                       bool coalesced) {
  return impl_->RecordUnstoredMiss(request, answer, coalesced);
}
absl::Status Cache::FlushStats() { return impl_->FlushStats(); }
absl::StatusOr<SavingsReport> Cache::Report() { return impl_->Report(); }
Cache::MemoryStats Cache::GetMemoryStats() { return impl_->GetMemoryStats(); }
absl::StatusOr<CacheStats> Cache::Stats() { return impl_->Stats(); }
absl::StatusOr<EntryInfo> Cache::Inspect(const Key128& key) {
  return impl_->Inspect(key);
}
absl::Status Cache::ForEachEntry(
    const std::function<bool(const EntryInfo&)>& fn) {
  return impl_->ForEachEntry(fn);
}
absl::StatusOr<int64_t> Cache::Purge(const PurgeFilter& filter) {
  return impl_->Purge(filter);
}
absl::StatusOr<int64_t> Cache::Export(std::ostream& out) {
  return impl_->Export(out);
}
absl::StatusOr<int64_t> Cache::Import(std::istream& in) {
  return impl_->Import(in);
}

}  // namespace promptcache
