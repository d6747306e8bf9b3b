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
#include "promptcache/export.h"
#include "promptcache/keys.h"
#include "promptcache/ledger.h"
#include "promptcache/options.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace promptcache {

// The schema version this build writes. It also opens schema 1 (ledger keys
// joined with NUL), rewriting its ledger keys on the first writable open.
inline constexpr int kSchemaVersion = 2;

// One stored entry.
struct EntryInfo {
  Key128 key;
  std::string ns;
  std::string backend;
  std::string model;
  std::string canonical_request;  // see keys.h
  std::vector<Answer> answers;    // one, or up to max_answers_per_key
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
  // With a byte budget (Options::max_bytes): bytes counted against it,
  // entries evicted since open. Answers refused by admission since open.
  int64_t budgeted_bytes = 0;
  int64_t evicted_entries = 0;
  int64_t not_admitted = 0;
  // Long answers shared by several prompts are stored once: how many such
  // bodies, their bytes, and how many answers refer to them.
  int64_t shared_bodies = 0;
  int64_t shared_body_bytes = 0;
  int64_t shared_body_refs = 0;
  // Ledger rows found at open that could not be read (left on disk, kept
  // out of reports): written by an older build that let a control
  // character into a name.
  int64_t unreadable_ledger_rows = 0;
  // Write-ahead-log bytes that recovery at open skipped because they were
  // damaged: the writes in them and after them are lost, every write before
  // them is whole. After a process crash this is usually the torn last
  // record of a write that was in progress (never acknowledged); damage
  // further in (a disk fault) loses acknowledged writes. RocksDB's lines
  // saying so in `wal_recovery`. 0: nothing lost.
  int64_t wal_bytes_dropped = 0;
  std::string wal_recovery;
  // Since open, the cache's own failures that calls went on without (see
  // "Failures" on Cache): lookups that could not read the store (served as
  // misses), embedder failures (exact tier only for that call), writes that
  // failed (an answer not stored, served all the same; or a call's ledger
  // counts lost). And the last such error's message.
  int64_t lookup_errors = 0;
  int64_t embedder_errors = 0;
  int64_t store_errors = 0;
  std::string last_error;
  // Non-empty when the entries could not be read to the end (a corrupt
  // block): entries, answers, bytes and hits then count those before the
  // damage. `promptcache verify` tells more, `promptcache repair` mends.
  std::string scan_error;
};

// What Cache::Verify found. Counts are of records read; a table that cannot
// be read stops the walk of its family (see `problems`).
struct VerifyReport {
  int64_t table_files = 0;
  int64_t entries = 0;
  int64_t unreadable_entries = 0;  // do not decode
  int64_t ledger_rows = 0;
  int64_t unreadable_ledger_rows = 0;
  int64_t vectors = 0;
  int64_t unreadable_vectors = 0;
  int64_t orphan_vectors = 0;  // of no entry (harmless, wasted space)
  int64_t orphan_stats = 0;    // entry counters of no entry (over-budget)
  // One line per problem: a checksum mismatch in a file, a family whose
  // walk stopped, the first unreadable records. Empty: the store is whole.
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

// Which entries Purge() deletes: those matching every given condition.
struct PurgeFilter {
  std::optional<std::string> ns;
  // Entries created before this time.
  std::optional<absl::Time> created_before;
  // Only entries past their expiry.
  bool expired_only = false;
};

// What Cache::Lookup reads.
struct LookupOptions {
  enum class Tiers {
    kNone,              // validate and canonicalize only (bypass, refresh)
    kExact,             // the exact tier
    kExactAndSemantic,  // the exact tier, then the semantic one
  };
  Tiers tiers = Tiers::kExactAndSemantic;
  // The semantic tier for this request: nullopt follows
  // SemanticOptions::enabled. Off, it does no semantic work at all, and
  // Record stores no vector.
  std::optional<bool> semantic;
  // Similarity threshold overriding the calibrated decision (see
  // CacheTiers::FindSemantic).
  std::optional<double> threshold;
};

// What Cache::Lookup found, and on a miss what Cache::Record needs.
struct LookupResult {
  // A hit, already counted in the ledger.
  std::optional<Response> hit;
  // What the semantic tier decided, one line (see Response); empty when it
  // did not look.
  std::string semantic_decision;
  // The request's keys. `canonicalized` is false after an exact hit found
  // from the key alone (the canonical form is computed on a miss only).
  bool canonicalized = false;
  CanonicalizedRequest canonical;
  Key128 exact_key;
  // For Record: whether the semantic tier is on for this request, whether
  // it looked (then `query_vector` is the last user turn's embedding, or
  // empty when it could not embed: Record does not ask again).
  bool semantic = false;
  bool semantic_looked = false;
  std::vector<float> query_vector;
};

// How a call that Cache::Lookup did not serve ended.
struct Outcome {
  enum class Kind {
    kAnswered,         // upstream answered: a miss (kRefresh with replace)
    kBypassed,         // CallOptions::bypass: upstream answered, not stored
    kUpstreamFailed,   // upstream failed: counted, nothing stored
    kCoalesced,        // waited for an identical call that was answered
    kCoalescedFailed,  // waited for an identical call that failed
  };
  Kind kind = Kind::kAnswered;
  // Store a complete answered miss (false: CallOptions::no_store).
  bool store = true;
  // A forced refresh: replaces the entry's answers instead of appending to
  // a bucket, and is never refused by admission.
  bool replace = false;
  // Overrides Options::default_ttl; must be positive.
  std::optional<absl::Duration> ttl;
};

// Failures. The cache never fails a call for its own trouble once the
// request itself is valid:
// - a lookup that cannot read the store (an I/O error, a corrupt block or
//   entry) is a miss: the call goes upstream and its answer replaces the
//   unreadable entry;
// - an embedder that errors, throws or returns a wrong-size, NaN or
//   infinite vector leaves that call to the exact tier;
// - a failed write of an answer leaves the answer served but not stored;
//   a failed write of a call's ledger counts (an upstream error, a miss
//   not stored) loses those counts, never an answer.
// Each is counted in CacheStats (lookup_errors, embedder_errors,
// store_errors, last_error). Errors of the request (InvalidArgument) and
// of the options are returned to the caller; so are those of calls made
// directly on the tier-level methods (CacheTiers), which count them too.
class PROMPTCACHE_EXPORT Cache {
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

  // --- The protocol between a client and the cache ---
  //
  // A client (CachedClient, or your own) makes two calls per request:
  // Lookup, and, when Lookup did not serve it, Record with how the call
  // ended. Each counts the request in the ledger exactly once. Tier-level
  // calls for tools and tests are in promptcache/cache_tiers.h.

  // Looks `request` up in the tiers `options` names and fills `lookup`:
  // on a hit, `lookup->hit` (the answer, already counted: cache_status,
  // dollars_saved, entry_key, request_key, similarity); on a miss, what
  // Record needs. A `lookup` that an earlier call filled for the same
  // request is continued, not recomputed (CachedClient looks in the exact
  // tier, joins identical calls in flight, then looks in both tiers).
  // Errors: InvalidArgument for an invalid request, before anything is
  // read. Failures of the store or the embedder are misses (see
  // "Failures" above).
  absl::Status Lookup(const Request& request, const LookupOptions& options,
                      LookupResult* lookup);

  // Counts how a call that Lookup did not serve ended (`lookup` from that
  // Lookup) and, for a complete answer with `outcome.store`, stores it
  // with its vector in the same write as its ledger delta (an answer that
  // is incomplete, see IsCompleteFinishReason, or refused by admission is
  // counted as not stored). `answer` is the upstream's answer (kAnswered,
  // kBypassed) or the leader's served response (kCoalesced), null for the
  // failures; a null answer for the others counts as a failure. Its served
  // fields are set afresh (what a ModelClient put there is dropped):
  // cache_status, dollars_saved, dollars_spent, priced, stored, entry_key
  // (when stored), request_key, semantic_decision. Never fails the call: a
  // write that fails is counted in CacheStats::store_errors and the answer
  // is returned unstored.
  void Record(const Request& request, const LookupResult& lookup,
              const Outcome& outcome, Response* answer);

  // --- Semantic feedback and explanation (needs Options::embedder) ---

  // Marks a served semantic hit wrong: `entry_key` is never again served to
  // the request with `request_key` (both as in Response), and the ledger
  // counts a false hit. NotFound when no such semantic hit was served.
  absl::Status ReportFalseHit(const Key128& request_key,
                              const Key128& entry_key);

  // Confirms that a served semantic hit was right (as Response's keys).
  // Confirmations may lower the entry's own cut within the error bound
  // (SemanticOptions::feedback_max_lowering). NotFound when no such
  // semantic hit was served; FailedPrecondition when it was reported wrong.
  absl::Status ConfirmSemanticHit(const Key128& request_key,
                                  const Key128& entry_key);

  // How the match decision judges `request`'s candidates, without serving
  // or recording anything: for "promptcache explain" and debugging.
  struct SemanticCandidate {
    Key128 entry;
    std::string prompt;  // the stored last user turn
    double similarity = 0;
    double score = 0;  // calibrated probability, or similarity by threshold
    double cut = 0;    // what it needed (the entry's own after feedback)
    std::string veto;  // non-empty: the conflict that refused it
    std::vector<std::pair<std::string, double>> features;
    bool other_conversation = false;  // a different context: never served
    bool reported_wrong = false;      // this pair was reported wrong
    bool served = false;              // what FindSemantic would serve
    std::string decision;             // one line: what decided
  };
  struct SemanticExplanation {
    // "calibrated (builtin-hash-v1/128, target 0.01, cut 0.87)" or
    // "similarity >= 0.9 (threshold override)".
    std::string rule;
    std::vector<SemanticCandidate> candidates;  // by similarity
  };
  absl::StatusOr<SemanticExplanation> ExplainSemantic(
      const Request& request, std::optional<double> threshold = std::nullopt);

  struct SemanticHitInfo {
    Key128 request_key;
    std::string query;  // the last user turn that was served
    double similarity = 0;
    int64_t count = 0;
    absl::Time last_served;
    bool reported_wrong = false;
  };
  // The semantic hits `entry_key` has served.
  absl::StatusOr<std::vector<SemanticHitInfo>> SemanticHitsOf(
      const Key128& entry_key);

  struct SemanticStats {
    std::string embedder;  // name stored in the cache
    // Vectors in the index; those of recent stores still queued are
    // counted in `queued_vectors` instead (WaitForSemanticIndex drains).
    int64_t vectors = 0;
    int64_t scopes = 0;
    int64_t index_memory_bytes = 0;
    // The index is still being rebuilt in the background (see
    // SemanticOptions::rebuild_index_in_background); `vectors` so far.
    bool rebuilding = false;
    // Stored vectors the rebuild skipped because they did not decode.
    int64_t unreadable_vectors = 0;
    // Vectors of recent stores waiting to be added to the index (searched
    // meanwhile; SemanticOptions::max_queued_vectors).
    int64_t queued_vectors = 0;
    // Lookups and stores whose last user turn was longer than
    // SemanticOptions::max_prompt_bytes (semantic tier skipped).
    int64_t long_prompts_skipped = 0;
  };
  SemanticStats GetSemanticStats();
  // Blocks until a background rebuild of the index has ended and the
  // vectors queued by stores so far are in the index (at once when there
  // is nothing to wait for).
  void WaitForSemanticIndex();

  // Memory held to serve lookups, all within Options::block_cache_bytes
  // (the budget): RocksDB's block cache and the hot answers; of that, the
  // hot answers and the memtables, which are charged to it. Cheap: reads
  // counters only.
  struct MemoryStats {
    int64_t budget_bytes = 0;
    int64_t used_bytes = 0;
    int64_t hot_answer_bytes = 0;
    int64_t hot_answers = 0;
    int64_t memtable_bytes = 0;
    // The hot answers are being filled after open
    // (Options::warm_hot_cache_on_open).
    bool warming = false;
  };
  MemoryStats GetMemoryStats();

  // --- Ledger ---

  // Writes pending hit statistics now: the ledger, the semantic hit log and
  // the entries' hit counters.
  absl::Status FlushStats();
  // The savings per namespace x backend x model, with totals, since the
  // cache was created. Writes the pending ledger first (the entries' own
  // counters keep Options::entry_stats_flush_interval).
  absl::StatusOr<SavingsReport> Report();

  // --- Maintenance ---

  // Reads every table file (checksums) and decodes every entry, ledger row
  // and vector of the cache at `path`, opened read-only. Run it on a cache
  // no process is writing to: a writer's compactions delete files a
  // read-only reader may still want. Errors only when it cannot be opened.
  static absl::StatusOr<VerifyReport> Verify(const std::string& path);
  // Mends a damaged cache (it must not be open elsewhere): RocksDB's repair
  // first, which moves table files it cannot read to `path`/lost/ (their
  // answers are fetched again when next asked: it is a cache), then removes
  // entries that do not decode, and vectors and counters of entries that
  // are gone. Ledger rows are kept. Returns Verify's report afterwards.
  // `options` as for Open (its embedder, if any, rebuilds the index).
  static absl::StatusOr<VerifyReport> Repair(const std::string& path,
                                             const Options& options);

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
  friend class CacheTiers;  // promptcache/cache_tiers.h
  explicit Cache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_CACHE_H_
