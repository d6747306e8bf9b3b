// RocksStore: the Store on local disk, a RocksDB database with a column
// family per Family. Owns RocksDB's tuning (one memory budget shared with
// the caller through its block cache, Bloom filters, LZ4), the checks that
// keep Open from taking over or deleting what is not a cache, and
// write-ahead-log recovery that keeps what it dropped.
#ifndef PROMPTCACHE_SRC_STORE_ROCKS_STORE_H_
#define PROMPTCACHE_SRC_STORE_ROCKS_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "store/store.h"

namespace promptcache::internal {

struct RocksStoreOptions {
  // Opens for reading only: no write, no recovery of a cut-short create.
  bool read_only = false;
  // Creates the store when `path` holds none (not with read_only).
  bool create_if_missing = true;
  // The block cache that bounds RocksDB's memory (blocks and memtables);
  // required. The caller may hold memory against it too.
  std::shared_ptr<rocksdb::Cache> block_cache;
  // Memtable budget, charged to `block_cache`.
  size_t memtable_bytes = size_t{8} << 20;
  // Each write reaches the disk before Write returns (fsync), so that it
  // survives a power loss, not only a process crash.
  bool sync_writes = false;
  // Null: the default. Tests pass one whose files fail on cue.
  rocksdb::Env* env = nullptr;
};

class RocksStore : public Store {
 public:
  // Opens the store at `path`, creating it when there is none and
  // `create_if_missing`. Refuses, changing nothing: a path that is not a
  // directory, database files without their CURRENT file (a new database
  // there would delete them), a RocksDB database without a cache's
  // families. Finishes a create that a crash cut short.
  static absl::StatusOr<std::unique_ptr<RocksStore>> Open(
      const std::string& path, const RocksStoreOptions& options);

  // Whether `path` holds a cache's store, even one whose MANIFEST is
  // damaged (its OPTIONS files name the entries family).
  static bool LooksLikeAStore(const std::string& path);
  // RocksDB's repair of `path` with every family under its own options.
  // What it cannot read it moves to lost/; families it found no table of
  // are created empty; the store opens afterwards.
  static absl::Status Repair(const std::string& path);

  // Flushes memtables when writable (a cleanly closed store should not
  // depend on replaying its log), then closes.
  ~RocksStore() override;

  // Whether Open created the store (there was none at `path`).
  bool created() const { return created_; }
  // Bytes of the write-ahead log that recovery at open dropped, and
  // RocksDB's lines saying so.
  int64_t wal_bytes_dropped() const { return wal_bytes_dropped_; }
  const std::string& wal_recovery() const { return wal_recovery_; }

  bool Has(Family family) const override;
  absl::StatusOr<bool> Get(Family family, absl::string_view key,
                           std::string* value,
                           const StoreReadOptions& read = {}) override;
  absl::StatusOr<bool> Read(Family family, absl::string_view key,
                            absl::FunctionRef<void(absl::string_view)> fn,
                            const StoreReadOptions& read = {}) override;
  std::unique_ptr<StoreBatch> NewBatch() override;
  absl::Status Write(StoreBatch* batch) override;
  std::unique_ptr<StoreView> NewView() override;
  std::unique_ptr<StoreIterator> NewIterator(
      Family family, const StoreReadOptions& read = {}) override;
  int64_t MemoryBytes() override;
  FileCheck CheckFiles() override;

 private:
  RocksStore() = default;
  rocksdb::ColumnFamilyHandle* Handle(Family family) const {
    return handles_by_family_[static_cast<int>(family)];
  }
  rocksdb::ReadOptions ToRocks(const StoreReadOptions& read) const;

  rocksdb::DB* db_ = nullptr;
  bool read_only_ = false;
  bool created_ = false;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  // By Family; null for a family the store lacks.
  rocksdb::ColumnFamilyHandle* handles_by_family_[kFamilyCount] = {};
  rocksdb::WriteOptions write_options_;
  int64_t wal_bytes_dropped_ = 0;
  std::string wal_recovery_;
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_STORE_ROCKS_STORE_H_
