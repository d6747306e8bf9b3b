#include "promptcache/cache.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "cost/token_estimate.h"
#include "promptcache/cache_tiers.h"
#include "request/namespace.h"
#include "rocksdb/env.h"
#include "semantic/prompt_analysis.h"

namespace promptcache {
namespace internal {
namespace {
std::atomic<rocksdb::Env*> env_for_testing{nullptr};
}  // namespace
void SetEnvForTesting(rocksdb::Env* env) { env_for_testing.store(env); }
rocksdb::Env* EnvForTesting() { return env_for_testing.load(); }
}  // namespace internal

size_t BlockCacheBytesFor(size_t hot_cache_bytes) {
  // HotRoom grows with the budget, by at least 5/8 of each added byte.
  size_t mib = std::max<size_t>(1, hot_cache_bytes >> 20);
  while (HotRoom(mib << 20) < hot_cache_bytes) ++mib;
  return mib << 20;
}

Cache::Impl::Impl(std::string path, Options options)
    : path_(std::move(path)),
      options_(std::move(options)),
      budget_(options_),
      hit_counters_(&options_.prices, options_.pool_unpriced_models) {}

Cache::Impl::~Impl() {
  {
    absl::MutexLock lock(&stop_mu_);
    stop_ = true;
  }
  if (warmer_.joinable()) warmer_.join();
  if (indexer_.joinable()) indexer_.join();
  if (flusher_.joinable()) flusher_.join();
  if (store_ != nullptr && !options_.read_only) {
    FlushStats().IgnoreError();
    if (semantic_on()) SaveIndexes();
  }
  // Closed before the parts that charge its block cache (the hot answers).
  bodies_.reset();
  store_.reset();
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
    const std::unique_ptr<internal::StoreView> view = store_->NewView();
    internal::StoreReadOptions read;
    read.view = view.get();
    read.fill_cache = false;
    std::unique_ptr<internal::StoreIterator> it =
        store_->NewIterator(internal::Family::kEntries, read);
    if (resume.empty()) {
      it->SeekToFirst();
    } else {
      it->Seek(resume);
    }
    for (int n = 0; it->Valid() && n < 256; it->Next(), ++n) {
      absl::StatusOr<Key128> key = Key128::FromBytes(it->key());
      if (!key.ok()) continue;
      const size_t shard = internal::HotAnswers::ShardIndex(*key);
      if (full[shard]) continue;
      Response answer;
      absl::StatusOr<internal::EntryHead> head =
          internal::DecodeAnswer(it->value(), 0, &answer);
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
    if (!done) resume = std::string(it->key());
  }
  warming_.store(false);
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
    answer.entry_key = key;
    return answer;
  }
  const uint64_t hot_version = hot_ != nullptr ? hot_->Version(key) : 0;
  const std::array<char, 16> bytes = internal::KeyBytes(key);
  // Decoded while the value is pinned (no copy). A bucket's answers take
  // turns (round robin); only single answers are kept hot.
  absl::StatusOr<internal::EntryHead> head;
  absl::StatusOr<bool> found =
      store_->Read(internal::Family::kEntries, internal::AsView(bytes),
                   [&](absl::string_view value) {
                     head = internal::DecodeAnswer(value, 0, &answer);
                     if (!head.ok() || head->answers <= 1) return;
                     if (head->expires_us != 0 && now >= head->expires_us)
                       return;
                     uint64_t pick;
                     {
                       absl::MutexLock lock(&round_robin_mu_);
                       pick = round_robin_[key]++;
                     }
                     head = internal::DecodeAnswer(value, pick, &answer);
                   });
  if (!found.ok()) return internal::Prefixed("reading entry", found.status());
  if (!*found) return absl::NotFoundError("no entry");
  if (!head.ok()) return head.status();
  if (head->expires_us != 0 && now >= head->expires_us) {
    return absl::NotFoundError("entry expired");
  }
  if (!head->body_key.empty()) {
    if (absl::Status b = bodies_->Resolve(head->body_key, &answer); !b.ok()) {
      return b;
    }
  }
  if (hot_ != nullptr && head->answers == 1) {
    hot_->Put(key, hot_version, head->expires_us, answer);
  }
  if (answers_stored != nullptr) *answers_stored = head->answers;
  answer.entry_key = key;
  return answer;
}

void Cache::Impl::ForgetHitCounts(const Key128& key) {
  if (hot_ != nullptr) hot_->Erase(key, /*drop_counts=*/true);
  hit_counters_.ForgetEntry(key);
}

void Cache::Impl::RecordHit(const Request& request, const Key128& entry_key,
                            CacheStatus how, Response* answer) {
  internal::ServedHit hit;
  hit.entry = entry_key;
  hit.ns = NamespaceOf(request);
  hit.backend = request.backend;
  hit.model = request.model;
  hit.how = how;
  hit.usage = internal::EffectiveUsage(request, *answer);
  hit.upstream_latency = answer->upstream_latency;
  hit.now_us = NowMicros();
  if (how == CacheStatus::kSemanticHit && answer->request_key.has_value()) {
    hit.request_key = &*answer->request_key;
    hit.similarity = answer->similarity;
    if (const Message* last = LastUserMessage(request)) {
      hit.query = last->content;
    }
  }
  const internal::HitCounters::Saving saved = hit_counters_.CountServed(hit);
  answer->cache_status = how;
  answer->priced = saved.priced;
  answer->dollars_saved = saved.nusd * 1e-9;
  answer->dollars_spent = 0;
  answer->stored = false;
  if (how == CacheStatus::kCoalesced) return;
  // The entry's own counter: with its answer when held hot (no other map
  // probed), else with the others waiting for the flush.
  if (hot_ != nullptr && hot_->CountHit(entry_key, hit.now_us, saved.nusd)) {
    return;
  }
  hit_counters_.AddEntryHits(entry_key, {1, hit.now_us, saved.nusd});
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
  const std::array<char, 16> key_bytes =
      internal::KeyBytes(canonical.keys.exact);

  absl::MutexLock lock(&write_mu_);
  internal::StoredEntry entry;
  std::string old_value;
  absl::StatusOr<bool> read_old = store_->Get(
      internal::Family::kEntries, internal::AsView(key_bytes), &old_value);
  if (!read_old.ok()) {
    // An entry that cannot be read (a corrupt block) is replaced: refusing
    // would leave the key failing for good. Its shared bodies, if any, keep
    // one reference too many (kept longer, never served wrongly).
    NoteFailure(Failure::kLookup, internal::Prefixed("reading entry to replace",
                                                     read_old.status()));
  }
  const bool had_old = Found(read_old);
  bool appended = false;
  if (had_old) {
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
  const int64_t cost_per_hit = budget_.CostPerHit(request, *answer);
  // The answer only: what was served with it belongs to this call.
  entry.answers.push_back(static_cast<const Answer&>(*answer));
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
  if (had_old && !appended) bodies.UnrefEntry(old_value);
  std::unique_ptr<internal::StoreBatch> batch = store_->NewBatch();
  if (absl::Status b = bodies_->Apply(bodies, batch.get()); !b.ok()) {
    NoteFailure(Failure::kStore, b);
    return b;
  }
  const std::string encoded = internal::EncodeEntry(entry);
  batch->Put(internal::Family::kEntries, internal::AsView(key_bytes), encoded);
  const bool add_vector = with_vector && !appended;
  if (add_vector) {
    PutVector(batch.get(), canonical.keys.exact, canonical.keys, vector,
              last->content);
  }
  // The hit counters (kept across a replacement) with the entry's size,
  // cost and expiry, which eviction reads without the entry.
  internal::EntryStats stats;
  {
    std::string old_stats;
    if (Found(
            store_->Get(Family::kEntryStats, AsView(key_bytes), &old_stats))) {
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
    stats.bytes = internal::Budget::EntryBytes(
                      encoded.size(), with_vector ? vector.size() : 0,
                      with_vector ? last->content.size() : 0) +
                  new_body_bytes;
  }
  stats.cost_nusd = cost_per_hit;
  stats.expires_us = entry.expires_us;
  batch->Put(internal::Family::kEntryStats, internal::AsView(key_bytes),
             internal::EncodeEntryStats(stats));
  if (absl::Status s = WriteBatchWithLedger(batch.get(), delta); !s.ok()) {
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
  answer->entry_key = canonical.keys.exact;
  if (budget_.enabled()) {
    budget_.Track(canonical.keys.exact, stats, now);
    // The answer is stored and returned either way; a failed eviction is
    // retried on the next store.
    EvictToBudgetLocked().IgnoreError();
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
absl::Status Cache::Lookup(const Request& request, const LookupOptions& options,
                           LookupResult* lookup) {
  return impl_->Lookup(request, options, lookup);
}
void Cache::Record(const Request& request, const LookupResult& lookup,
                   const Outcome& outcome, Response* answer) {
  impl_->Record(request, lookup, outcome, answer);
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

// --- CacheTiers: the tier-level calls (promptcache/cache_tiers.h) ---

absl::StatusOr<Response> CacheTiers::GetExact(const Key128& key, int* answers) {
  return cache_.impl_->GetExact(key, answers);
}
void CacheTiers::RecordHit(const Request& request, const Key128& entry_key,
                           CacheStatus how, Response* answer) {
  cache_.impl_->RecordHit(request, entry_key, how, answer);
}
absl::Status CacheTiers::StoreMiss(const Request& request,
                                   const CanonicalizedRequest& canonical,
                                   std::optional<absl::Duration> ttl,
                                   Response* answer, bool replace,
                                   const std::vector<float>* query_vector) {
  return cache_.impl_->StoreMiss(request, canonical, ttl, replace, query_vector,
                                 answer);
}
absl::Status CacheTiers::RecordUnstoredMiss(const Request& request,
                                            Response* answer, bool coalesced) {
  return cache_.impl_->RecordUnstoredMiss(request, answer, coalesced);
}
absl::StatusOr<Response> CacheTiers::FindSemantic(
    const Request& request, const RequestKeys& keys,
    std::optional<double> threshold, std::vector<float>* query_vector) {
  return cache_.impl_->FindSemantic(request, keys, threshold, query_vector);
}

}  // namespace promptcache
