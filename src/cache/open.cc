// Cache::Impl::Open: RocksDB options and the memory budget, families,
// schema checks and migrations, recovery, and the parts opened after it.
#include <cmath>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "promptcache/cache.h"
#include "rocksdb/cache.h"
#include "store/rocks_store.h"

namespace promptcache {
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
  // One memory budget: memtables are charged to the block cache and hot
  // answers lower its capacity (HotAnswers' reservation).
  internal::RocksStoreOptions store_options;
  store_options.read_only = options_.read_only;
  store_options.create_if_missing = options_.create_if_missing;
  store_options.sync_writes = options_.sync_writes;
  store_options.block_cache = block_cache_;
  store_options.memtable_bytes = MemtableBytes(options_.block_cache_bytes);
  // Fault injection (tests/cache/fault_injection_test.cc).
  store_options.env = internal::EnvForTesting();
  absl::StatusOr<std::unique_ptr<internal::RocksStore>> opened =
      internal::RocksStore::Open(path_, store_options);
  if (!opened.ok()) return opened.status();
  const bool exists = !(*opened)->created();
  wal_bytes_dropped_ = (*opened)->wal_bytes_dropped();
  wal_recovery_ = (*opened)->wal_recovery();
  store_ = *std::move(opened);
  bodies_ = std::make_unique<internal::SharedBodies>(store_.get());

  std::string version;
  absl::StatusOr<bool> has_version =
      store_->Get(internal::Family::kMeta, kSchemaKey, &version);
  if (!has_version.ok()) {
    return absl::Status(has_version.status().code(),
                        absl::StrCat("reading schema version: ",
                                     has_version.status().message()));
  }
  if (!*has_version) {
    // A create cut short by a crash (the families exist, the version was
    // not written yet) is finished, never left to fail every open; a
    // database with data but no version is not ours to take over.
    bool empty = true;
    for (int f = 0; f < internal::kFamilyCount; ++f) {
      std::unique_ptr<internal::StoreIterator> it =
          store_->NewIterator(static_cast<internal::Family>(f));
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
    std::unique_ptr<internal::StoreBatch> batch = store_->NewBatch();
    batch->Put(internal::Family::kMeta, kSchemaKey,
               std::to_string(kSchemaVersion));
    batch->Put(internal::Family::kMeta, kCreatedKey,
               std::to_string(NowMicros()));
    batch->Put(internal::Family::kMeta, kSizedStatsKey, "1");
    if (absl::Status w = store_->Write(batch.get()); !w.ok()) return w;
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
    std::unique_ptr<internal::StoreBatch> migration = store_->NewBatch();
    if (absl::Status s =
            ledger_.Load(store_.get(), migrate_ledger_keys, migration.get(),
                         &unreadable_ledger_rows_);
        !s.ok()) {
      return s;
    }
    if (migrate_ledger_keys) {
      migration->Put(internal::Family::kMeta, kSchemaKey,
                     std::to_string(kSchemaVersion));
      if (absl::Status w = store_->Write(migration.get()); !w.ok()) return w;
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
  {
    absl::MutexLock lock(&write_mu_);
    if (budget_.enabled()) {
      if (absl::Status s = budget_.Load(store_.get()); !s.ok()) return s;
      if (absl::Status s = EvictToBudgetLocked(); !s.ok()) return s;
    }
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
