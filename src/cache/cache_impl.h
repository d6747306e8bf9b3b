// Cache::Impl: wires the store, the in-memory ledger, the pending hit
// counters, the hot answers and the semantic index.
#ifndef PROMPTCACHE_SRC_CACHE_CACHE_IMPL_H_
#define PROMPTCACHE_SRC_CACHE_CACHE_IMPL_H_

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/types/span.h"
#include "cache/budget.h"
#include "cache/hit_counters.h"
#include "cache/hot_answers.h"
#include "cache/huge_page_allocator.h"
#include "cache/lean_mutex.h"
#include "cache/ledger_rows.h"
#include "cache/shared_bodies.h"
#include "promptcache/cache.h"
#include "rocksdb/cache.h"
#include "rocksdb/env.h"
#include "semantic/match_decision.h"
#include "semantic/vector_index.h"
#include "store/entry_codec.h"
#include "store/store.h"

namespace promptcache {
namespace internal {

// Tests only: every cache opened from now on uses `env` (nullptr: the
// default), e.g. one whose files fail on cue.
void SetEnvForTesting(rocksdb::Env* env);
rocksdb::Env* EnvForTesting();

}  // namespace internal

class PROMPTCACHE_HIDDEN Cache::Impl {
 public:
  Impl(std::string path, Options options);
  ~Impl();

  absl::Status Open();

  const Options& options() const { return options_; }
  const std::string& path() const { return path_; }

  // The protocol (cache.h; in lookup_record.cc).
  absl::Status Lookup(const Request& request, const LookupOptions& options,
                      LookupResult* lookup);
  void Record(const Request& request, const LookupResult& lookup,
              const Outcome& outcome, Response* answer);
  // Whether `answers_stored` answers satisfy `request` (cache buckets).
  bool BucketFull(const Request& request, int answers_stored) const;
  // Serves an exact hit of `key` into `lookup` (counted); false on a miss.
  bool ServeExact(const Request& request, const Key128& key,
                  LookupResult* lookup);

  // The tier-level calls (cache_tiers.h).
  absl::StatusOr<Response> GetExact(const Key128& key, int* answers_stored);
  // GetExact without counting failures.
  absl::StatusOr<Response> ReadExact(const Key128& key, int* answers_stored);
  void RecordHit(const Request& request, const Key128& entry_key,
                 CacheStatus how, Response* answer);
  absl::Status StoreMiss(const Request& request,
                         const CanonicalizedRequest& canonical,
                         std::optional<absl::Duration> ttl, bool replace,
                         const std::vector<float>* query_vector,
                         Response* answer);
  absl::StatusOr<Response> FindSemantic(const Request& request,
                                        const RequestKeys& keys,
                                        std::optional<double> threshold,
                                        std::vector<float>* query_vector);
  absl::Status ReportFalseHit(const Key128& request_key,
                              const Key128& entry_key);
  absl::Status ConfirmSemanticHit(const Key128& request_key,
                                  const Key128& entry_key);
  absl::StatusOr<Cache::SemanticExplanation> ExplainSemantic(
      const Request& request, std::optional<double> threshold);
  absl::StatusOr<std::vector<Cache::SemanticHitInfo>> SemanticHitsOf(
      const Key128& entry_key);
  Cache::SemanticStats GetSemanticStats();
  void WaitForSemanticIndex();
  absl::Status RecordUnstoredMiss(const Request& request, Response* answer,
                                  bool coalesced);
  // Writes the ledger and semantic hit log, and the entries' hit counters
  // when `entry_counters_always` or when entry_stats_flush_interval has
  // passed since they were last written.
  absl::Status FlushStats(bool entry_counters_always = true);
  absl::StatusOr<SavingsReport> Report();
  absl::StatusOr<CacheStats> Stats();
  // Cache::Verify's walk (verify_repair.cc); with `remove`, also deletes
  // what it found unreadable or orphaned, and counts what it deleted.
  absl::Status VerifyStore(bool remove, VerifyReport* report);
  Cache::MemoryStats GetMemoryStats();
  absl::StatusOr<EntryInfo> Inspect(const Key128& key);
  absl::Status ForEachEntry(const std::function<bool(const EntryInfo&)>& fn);
  absl::StatusOr<int64_t> Purge(const PurgeFilter& filter);
  absl::StatusOr<int64_t> Export(std::ostream& out);
  absl::StatusOr<int64_t> Import(std::istream& in);

  // What feedback taught about one entry (stored in the feedback family).
  struct EntryBar {
    double raised_to = 0;  // > 0 once a false hit was reported
    int64_t confirmed = 0;
    int64_t wrong = 0;
  };

 private:
  int64_t NowMicros() const;
  absl::Status CheckWritable() const;
  absl::Status WriteBatchWithLedger(internal::StoreBatch* batch,
                                    const LedgerRow& delta)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // A miss's ledger delta (ledger_rows.h), priced with the options' book.
  LedgerRow MissDelta(const Request& request, Response* answer) const;
  // For an entry deleted from the store (evicted, purged, replaced by an
  // import): drops its hot answer and the hit counts not yet written, which
  // would otherwise be added to a later entry of the same key.
  void ForgetHitCounts(const Key128& key);
  // `entry_counters`: the entries' hit counters too, not only the ledger
  // and the semantic hit log.
  absl::Status FlushStatsLocked(bool entry_counters)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_, write_mu_);
  // `read` is the view the entry was read in (a snapshot): its shared
  // bodies are read in the same view.
  EntryInfo ToInfo(const Key128& key, internal::StoredEntry entry,
                   size_t stored_bytes, const internal::EntryStats& stats,
                   const internal::StoreReadOptions& read) const;
  struct ImportedEntry {
    RequestKeys keys;
    std::string value;          // encoded entry
    std::vector<float> vector;  // empty: no vector
    std::string text;           // what the vector embeds
  };
  absl::Status WriteEntries(const std::vector<ImportedEntry>& items);
  void FlushLoop();

  // Semantic tier (semantic_tier.cc, semantic_index.cc,
  // semantic_feedback.cc).
  bool semantic_on() const { return options_.embedder != nullptr; }
  // Whether `last` (the last user turn) is too long for the semantic tier
  // (SemanticOptions::max_prompt_bytes); counts it when so.
  bool TooLongForSemantic(const Message& last);
  absl::Status OpenSemantic();
  absl::Status Reembed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Adds the stored vectors of `scopes` to the index, in chunks under
  // write_mu_ so that stores and deletions interleave correctly with it;
  // until it ends those scopes are not saved at close (a partial index
  // must never be loaded as whole).
  void RebuildScopes(absl::flat_hash_set<Key128> scopes);
  void SaveIndexes();
  // Embeds one text, checking the embedder's output.
  absl::Status EmbedChecked(const std::string& text,
                            std::vector<float>* vector) const;
  absl::Status EmbedUnchecked(const std::string& text,
                              std::vector<float>* vector) const;
  // Puts the vector of `request` (or deletes it) into `batch`, bumping its
  // scope's generation; returns the scope touched.
  void PutVector(internal::StoreBatch* batch, const Key128& entry,
                 const RequestKeys& keys, const std::vector<float>& vector,
                 const std::string& text)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void DeleteVector(internal::StoreBatch* batch, const Key128& entry,
                    std::vector<Key128>* removed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void BumpGeneration(internal::StoreBatch* batch, const Key128& scope)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void ChargeEmbedding(const Request& request, const std::string& text);
  // The match rule of a lookup: a threshold override (per call, namespace,
  // options), else the calibration, else the uncalibrated threshold.
  internal::MatchRule RuleFor(const Request& request,
                              std::optional<double> threshold,
                              std::string* description) const;
  // Candidates of `keys.scope` near `vector`, judged by `decider`, down to
  // its similarity floor. With `all`, also other conversations' candidates
  // and those the number signature rules out (for explanations).
  struct JudgedCandidate {
    internal::VectorCandidate found;
    std::string text;
    internal::MatchDecision decision;
    bool other_context = false;
    bool wrong_pair = false;
  };
  std::vector<JudgedCandidate> JudgeCandidates(
      const RequestKeys& keys, const std::vector<float>& vector,
      const internal::MatchDecider& decider, bool all);
  // The rule of the calibration in force (calibration_ must be set).
  internal::MatchRule CalibratedRule() const;
  // An entry's own cut after feedback, given the rule's.
  double EntryCut(const EntryBar& bar, double rule_cut) const;
  // The score the served pair (request's text, entry) had, re-judged.
  absl::StatusOr<double> ScoreOfServedPair(const std::string& query,
                                           const Key128& entry,
                                           double similarity);
  void WriteEntryBar(const Key128& entry, const EntryBar& bar,
                     internal::StoreBatch* batch);
  // A copy of the entry's bar (default when it has none).
  EntryBar BarOf(const Key128& entry);
  // What ReportFalseHit and ConfirmSemanticHit do first: refuse a
  // read-only cache, then flush pending hits into the semantic hit log.
  absl::Status BeginFeedback() ABSL_LOCKS_EXCLUDED(write_mu_);
  // The semantic hit `entry_key` served `request_key`, or NotFound (as
  // written by the last FlushStats).
  absl::StatusOr<internal::SemanticHitRecord> ReadSemanticHit(
      const Key128& request_key, const Key128& entry_key);

  // Evicts down to the budget's low watermark when over it (budget.h
  // chooses; this deletes).
  absl::Status EvictToBudgetLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Deletes, in one write, each entry of `keys` that `doomed` accepts
  // (called with its stored value, null when it has none) with its
  // counters, vector and shared bodies, then forgets it everywhere (index,
  // hot answers, pending hits, budget). Returns how many were deleted.
  absl::StatusOr<int64_t> DeleteEntriesLocked(
      absl::Span<const Key128> keys,
      absl::FunctionRef<bool(const std::string* value)> doomed,
      absl::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  const std::string path_;
  const Options options_;
  // Set by Open; null only in a cache that failed to open.
  std::unique_ptr<internal::Store> store_;
  std::unique_ptr<internal::SharedBodies> bodies_;  // set by Open

  // Serializes writers so read-modify-write of entries and ledger rows is
  // atomic; the hit path never takes it.
  absl::Mutex write_mu_;
  // Held for a whole stats flush (which gives up write_mu_ between chunks)
  // and by Purge, so that a flush never interleaves with another flush or
  // with a purge. Taken before write_mu_.
  absl::Mutex flush_mu_ ABSL_ACQUIRED_BEFORE(write_mu_);
  // The persisted ledger, mirrored in memory.
  internal::LedgerRows ledger_ ABSL_GUARDED_BY(write_mu_);

  internal::Budget budget_ ABSL_GUARDED_BY(write_mu_);
  std::atomic<int64_t> not_admitted_{0};
  // The cache's own failures that calls went on without (CacheStats).
  enum class Failure { kLookup, kEmbedder, kStore };
  // Const: reads (and the const embedding path) count too.
  void NoteFailure(Failure kind, const absl::Status& status) const;
  mutable std::atomic<int64_t> lookup_errors_{0};
  mutable std::atomic<int64_t> embedder_errors_{0};
  std::atomic<int64_t> long_prompts_skipped_{0};
  mutable std::atomic<int64_t> store_errors_{0};
  mutable absl::Mutex last_error_mu_;
  mutable std::string last_error_ ABSL_GUARDED_BY(last_error_mu_);
  // What write-ahead-log recovery dropped at open (CacheStats).
  int64_t wal_bytes_dropped_ = 0;
  std::string wal_recovery_;
  // Ledger rows Open could not read (CacheStats::unreadable_ledger_rows).
  int64_t unreadable_ledger_rows_ = 0;

  // The one memory budget: blocks, memtables and hot answers charge it.
  std::shared_ptr<rocksdb::Cache> block_cache_;
  // Hits not yet written (the stats flush writes them).
  internal::HitCounters hit_counters_;
  // The counters a stats flush writes, kept for its capacity.
  std::vector<std::pair<Key128, internal::HitCounts>> flush_hits_
      ABSL_GUARDED_BY(flush_mu_);
  // When the entries' hit counters were last taken for writing.
  absl::Time entry_stats_flushed_ ABSL_GUARDED_BY(flush_mu_) = absl::Now();
  std::unique_ptr<internal::HotAnswers> hot_;  // null when disabled

  std::unique_ptr<internal::VectorIndex> index_;
  // Per-scope generation of stored vectors; stamps saved index files.
  absl::flat_hash_map<Key128, uint64_t> generations_ ABSL_GUARDED_BY(write_mu_);
  absl::flat_hash_set<Key128> dirty_scopes_ ABSL_GUARDED_BY(write_mu_);
  // Scopes a rebuild has not finished: never saved.
  absl::flat_hash_set<Key128> rebuilding_scopes_ ABSL_GUARDED_BY(write_mu_);
  // (request key, entry key) pairs reported wrong.
  absl::Mutex feedback_mu_;
  absl::flat_hash_set<std::pair<Key128, Key128>> wrong_pairs_
      ABSL_GUARDED_BY(feedback_mu_);
  absl::flat_hash_map<Key128, EntryBar> entry_bars_
      ABSL_GUARDED_BY(feedback_mu_);
  // The calibration in force (none: judged by similarity) and its cut for
  // SemanticOptions::target_false_hit_rate.
  std::optional<MatchCalibration> calibration_;
  double calibrated_cut_ = 1;
  bool surface_rewrites_ = false;
  // Below this similarity no candidate can reach any entry's cut.
  double calibrated_floor_ = 1;

  // Drops a deleted entry's bucket position (the map would otherwise grow
  // with every bucketed key ever stored).
  void ForgetRoundRobin(const Key128& key);
  absl::Mutex round_robin_mu_;
  absl::flat_hash_map<Key128, uint64_t> round_robin_
      ABSL_GUARDED_BY(round_robin_mu_);

  // Fills the hot answers from the store (Options::warm_hot_cache_on_open).
  void WarmHotAnswers();
  bool Stopping();

  absl::Mutex stop_mu_;
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread flusher_;
  std::thread warmer_;
  std::thread indexer_;  // a background index rebuild
  absl::Notification index_ready_;
  std::atomic<int64_t> unreadable_vectors_{0};
  std::atomic<bool> warming_{false};
};

}  // namespace promptcache

#endif  // PROMPTCACHE_SRC_CACHE_CACHE_IMPL_H_
