// Store: where a cache keeps its records. An ordered key-value store split
// into families (one per kind of record), with atomic batches of writes,
// consistent read views and ordered iteration: what the cache needs, and no
// more, so that another store (a shared Redis tier) can sit behind the same
// calls. RocksStore (rocks_store.h) is the one on disk.
//
// Keys and values are bytes. A family's keys iterate in bytewise order.
// All calls are thread-safe; a batch and an iterator belong to one thread.
#ifndef PROMPTCACHE_SRC_STORE_STORE_H_
#define PROMPTCACHE_SRC_STORE_STORE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "promptcache/keys.h"

namespace promptcache::internal {

// The families of a cache's store. kMeta holds metadata (schema version,
// embedder, scope generations).
enum class Family : int {
  kMeta = 0,
  kEntries,
  kLedger,
  kVectors,
  kSemanticHits,
  kFeedback,
  // Hit counters live apart from entries so that counting a hit writes a
  // few bytes instead of rewriting the whole entry. Merge() adds to them.
  kEntryStats,
  // Shared answer bodies (shared_bodies.h). Added after the first release:
  // an older store opened read-only may lack it (Store::Has).
  kBodies,
};
inline constexpr int kFamilyCount = 8;

// Writes applied together by Store::Write: all of them or none.
class StoreBatch {
 public:
  virtual ~StoreBatch() = default;
  virtual void Put(Family family, absl::string_view key,
                   absl::string_view value) = 0;
  virtual void Delete(Family family, absl::string_view key) = 0;
  // Adds an encoded EntryStats delta (entry_stats_merge.h) to `key`'s
  // counters; only for Family::kEntryStats.
  virtual void Merge(Family family, absl::string_view key,
                     absl::string_view operand) = 0;
  // Writes (puts, deletes, merges) in the batch.
  virtual int Count() const = 0;
};

// A consistent view of the store as of its creation (a snapshot): reads
// through it see no later write.
class StoreView {
 public:
  virtual ~StoreView() = default;
};

// How a read is done. The defaults suit point reads on the serving path.
struct StoreReadOptions {
  // Null: the latest data.
  const StoreView* view = nullptr;
  // False for walks of everything, which must not evict what serving uses.
  bool fill_cache = true;
  // Checks every block read against its checksum, so that a damaged block
  // is an error (DataLoss), never a wrong value or a false "absent".
  bool verify_checksums = true;
};

// Ordered iteration over one family. key() and value() stay valid until the
// iterator moves.
class StoreIterator {
 public:
  virtual ~StoreIterator() = default;
  virtual void SeekToFirst() = 0;
  // The first key >= `key`.
  virtual void Seek(absl::string_view key) = 0;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual absl::string_view key() const = 0;
  virtual absl::string_view value() const = 0;
  // Not OK when iteration stopped early on an error (then !Valid()).
  virtual absl::Status status() const = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Whether the store holds `family` (all do except kBodies in an old store
  // opened read-only). Calls on a family it lacks find nothing.
  virtual bool Has(Family family) const = 0;

  // Reads `key` into `*value`: true when found, false when absent, an error
  // when the store cannot be read.
  virtual absl::StatusOr<bool> Get(Family family, absl::string_view key,
                                   std::string* value,
                                   const StoreReadOptions& read = {}) = 0;
  // Get without a copy: calls `fn` with the value while it is pinned.
  virtual absl::StatusOr<bool> Read(
      Family family, absl::string_view key,
      absl::FunctionRef<void(absl::string_view)> fn,
      const StoreReadOptions& read = {}) = 0;

  virtual std::unique_ptr<StoreBatch> NewBatch() = 0;
  // Applies `batch` atomically and durably (it survives a process crash
  // once this returns OK; with RocksStoreOptions::sync_writes, a power loss). A
  // failed write leaves the store unchanged; the store tries to recover from
  // the fault, so that later writes may work.
  virtual absl::Status Write(StoreBatch* batch) = 0;

  virtual std::unique_ptr<StoreView> NewView() = 0;
  virtual std::unique_ptr<StoreIterator> NewIterator(
      Family family, const StoreReadOptions& read = {}) = 0;

  // Memory the store holds outside its block cache (memtables), in bytes.
  virtual int64_t MemoryBytes() = 0;

  // What a check of the store's own files found (Cache::Verify).
  struct FileCheck {
    int64_t files = 0;
    std::vector<std::string> problems;
  };
  virtual FileCheck CheckFiles() = 0;
};

// The 16-byte store key of an entry (Key128::ToBytes), without allocating.
inline std::array<char, 16> KeyBytes(const Key128& key) {
  std::array<char, 16> out;
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((key.hi >> (56 - 8 * i)) & 0xFF);
    out[8 + i] = static_cast<char>((key.lo >> (56 - 8 * i)) & 0xFF);
  }
  return out;
}
inline absl::string_view AsView(const std::array<char, 16>& bytes) {
  return absl::string_view(bytes.data(), bytes.size());
}

// Whether a Get or Read found the key (an error counts as not found).
inline bool Found(const absl::StatusOr<bool>& found) {
  return found.ok() && *found;
}

// `status` with `what` before its message ("what: message"); OK stays OK.
inline absl::Status Prefixed(absl::string_view what,
                             const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(what, ": ", status.message()));
}

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_STORE_STORE_H_
