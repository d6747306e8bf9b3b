// The cache database: entries, ledger and metadata in one RocksDB.
//
//   auto cache = promptcache::Cache::Open("/var/cache/myapp", options);
//   if (!cache.ok()) ...;
//   promptcache::CachedClient client(**cache, my_model_call);
//
// A Cache is thread-safe. One process opens a path for writing at a time;
// others may open it read-only.
#ifndef PROMPTCACHE_CACHE_H_
#define PROMPTCACHE_CACHE_H_

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "promptcache/keys.h"
#include "promptcache/ledger.h"
#include "promptcache/options.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace promptcache {

// The schema version this build reads and writes.
inline constexpr int kSchemaVersion = 1;

// One stored entry.
struct EntryInfo {
  Key128 key;
  std::string ns;
  std::string backend;
  std::string model;
  std::string canonical_request;  // see keys.h
  std::vector<Response> answers;  // one, or up to max_answers_per_key
  absl::Time created;
  absl::Time expires;   // absl::InfiniteFuture() when it never expires
  absl::Time last_hit;  // absl::InfinitePast() when never hit
  int64_t hit_count = 0;
  int64_t saved_nusd = 0;  // dollars its hits saved, in nano-dollars
  int64_t size_bytes = 0;  // stored bytes (key + value)
};

struct CacheStats {
  int64_t entries = 0;
  int64_t expired_entries = 0;  // stored but no longer served
  int64_t answers = 0;
  int64_t entry_bytes = 0;    // keys + values
  int64_t disk_bytes = 0;     // files under the path
  int64_t hits_recorded = 0;  // sum of entries' hit counts
  int schema_version = kSchemaVersion;
};

// Which entries Purge() deletes: those matching every given condition.
struct PurgeFilter {
  std::optional<std::string> ns;
  // Entries created before this time.
  std::optional<absl::Time> created_before;
  // Only entries past their expiry.
  bool expired_only = false;
};

class Cache {
 public:
  // Opens (or creates) the database at `path`. Errors: NotFound when it does
  // not exist and !create_if_missing; FailedPrecondition for a database of
  // another schema version or one that is not a promptcache database;
  // DataLoss when RocksDB reports corruption; InvalidArgument for bad
  // options.
  static absl::StatusOr<std::unique_ptr<Cache>> Open(const std::string& path,
                                                     const Options& options);

  // Writes pending hit statistics and closes the database.
  ~Cache();
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  const Options& options() const;
  const std::string& path() const;

  // --- Exact tier (used by CachedClient; usable directly) ---

  // The stored answer for `exact_key`, or NotFound when absent or expired.
  // With several answers in the entry (a cache bucket), successive calls
  // return them round-robin. `answers_stored`, when not null, receives how
  // many answers the entry holds. Does not count anything in the ledger.
  absl::StatusOr<Response> GetExact(const Key128& exact_key,
                                    int* answers_stored = nullptr);

  // Counts one request answered without an upstream call (`how` is
  // kExactHit, kSemanticHit or kCoalesced) and fills `answer`'s
  // dollars_saved / priced / cache_status. `entry_key` is the entry that
  // answered; its hit counter is updated with the next stats flush.
  void RecordHit(const Request& request, const Key128& entry_key,
                 CacheStatus how, Response* answer);

  // Stores a complete answer of a miss together with the miss's ledger
  // delta in one atomic write; fills `answer`'s dollars_spent / priced /
  // stored / entry_key. With max_answers_per_key > 1 and temperature > 0 the
  // answer is appended to the entry's bucket, else it replaces the entry.
  // `ttl` overrides Options::default_ttl. Returns FailedPrecondition for an
  // incomplete answer (see IsCompleteFinishReason).
  // `replace` (force refresh) replaces a bucket instead of appending.
  absl::Status StoreMiss(const Request& request,
                         const CanonicalizedRequest& canonical,
                         std::optional<absl::Duration> ttl, Response* answer,
                         bool replace = false);

  // Counts a miss that is not stored (bypass, no_store, incomplete answer)
  // and fills `answer`'s dollars_spent / priced; or, with `answer` null, an
  // upstream error.
  absl::Status RecordUnstoredMiss(const Request& request, Response* answer);

  // --- Ledger ---

  // Writes pending hit statistics now.
  absl::Status FlushStats();
  // The savings per namespace x backend x model, with totals, since the
  // cache was created. Writes pending hit statistics first.
  absl::StatusOr<SavingsReport> Report();

  // --- Maintenance ---

  absl::StatusOr<CacheStats> Stats();
  // Entry by exact key; NotFound when absent (expired entries are returned,
  // marked by their `expires`).
  absl::StatusOr<EntryInfo> Inspect(const Key128& exact_key);
  // Calls `fn` for every entry (stop early by returning false).
  absl::Status ForEachEntry(const std::function<bool(const EntryInfo&)>& fn);
  // Deletes matching entries; returns how many. Ledger history is kept.
  absl::StatusOr<int64_t> Purge(const PurgeFilter& filter);

  // Writes every entry as one JSON object per line.
  absl::StatusOr<int64_t> Export(std::ostream& out);
  // Reads lines written by Export. Each line's key is recomputed from its
  // request and must match; a bad line fails the import with its line
  // number and nothing from that line on is written (earlier lines are).
  absl::StatusOr<int64_t> Import(std::istream& in);

  class Impl;

 private:
  explicit Cache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_CACHE_H_
