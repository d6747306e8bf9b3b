// The semantic tier of Cache::Impl: vectors in RocksDB, the FAISS view of
// them, near-duplicate lookup with the guard, and false-hit feedback.

#include <cmath>
#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/rocks_util.h"
#include "cost/token_estimate.h"
#include "request/namespace.h"
#include "semantic/guard.h"

namespace promptcache {
namespace {

using internal::FromRocks;
using internal::View;

constexpr char kEmbedderKey[] = "embedder";
constexpr char kGenerationPrefix[] = "vgen:";
constexpr char kIndexDir[] = "semantic-index";

std::string GenerationKey(const Key128& scope) {
  return absl::StrCat(kGenerationPrefix, scope.ToBytes());
}

}  // namespace

absl::Status Cache::Impl::EmbedChecked(const std::string& text,
                                       std::vector<float>* vector) const {
  absl::Status s = EmbedUnchecked(text, vector);
  if (!s.ok()) vector->clear();  // never reused by StoreMiss
  return s;
}

absl::Status Cache::Impl::EmbedUnchecked(const std::string& text,
                                         std::vector<float>* vector) const {
  const Embedder& embedder = *options_.embedder;
  absl::Status s = embedder.Embed(absl::MakeConstSpan(&text, 1), vector);
  if (!s.ok()) return s;
  const size_t dim = static_cast<size_t>(embedder.dimension());
  if (vector->size() != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedder ", embedder.name(), " returned ", vector->size(),
                     " values; its dimension is ", dim));
  }
  double norm = 0;
  for (float v : *vector) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "embedder ", embedder.name(), " returned a NaN or infinite value"));
    }
    norm += double{v} * v;
  }
  if (norm <= 0) {
    // Nothing to compare (no known words): the exact tier only.
    return absl::NotFoundError("the text embeds to the zero vector");
  }
  // Inner product is cosine only for unit vectors: renormalize defensively.
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (float& v : *vector) v *= inv;
  return absl::OkStatus();
}

void Cache::Impl::ChargeEmbedding(const Request& request,
                                  const std::string& text) {
  const int64_t cost =
      options_.embedder->CostNanoDollars(internal::EstimateTokens(text));
  if (cost <= 0) return;
  HitShard& shard = hit_shards_[0];
  internal::LeanMutexLock lock(&shard.mu);
  PendingRow(shard, request).embedding_nusd += cost;
}

void Cache::Impl::BumpGeneration(rocksdb::WriteBatch* batch,
                                 const Key128& scope) {
  const uint64_t next = ++generations_[scope];
  batch->Put(meta_cf_, GenerationKey(scope), std::to_string(next));
  dirty_scopes_.insert(scope);
}

void Cache::Impl::PutVector(rocksdb::WriteBatch* batch, const Key128& entry,
                            const RequestKeys& keys,
                            const std::vector<float>& vector,
                            const std::string& text) {
  internal::VectorRecord record;
  record.scope_hi = keys.scope.hi;
  record.scope_lo = keys.scope.lo;
  record.context_hi = keys.context.hi;
  record.context_lo = keys.context.lo;
  record.vector = vector;
  record.text = text;
  batch->Put(vectors_cf_, entry.ToBytes(), internal::EncodeVector(record));
  BumpGeneration(batch, keys.scope);
}

void Cache::Impl::DeleteVector(rocksdb::WriteBatch* batch, const Key128& entry,
                               std::vector<Key128>* removed) {
  std::string value;
  if (!db_->Get(rocksdb::ReadOptions(), vectors_cf_, entry.ToBytes(), &value)
           .ok()) {
    return;
  }
  internal::VectorRecord record;
  batch->Delete(vectors_cf_, entry.ToBytes());
  if (internal::DecodeVector(value, &record).ok()) {
    BumpGeneration(batch, Key128{record.scope_hi, record.scope_lo});
  }
  removed->push_back(entry);
}

absl::Status Cache::Impl::OpenSemantic() {
  const Embedder& embedder = *options_.embedder;
  if (embedder.dimension() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "embedder ", embedder.name(), " has dimension ", embedder.dimension()));
  }
  const SemanticOptions& so = options_.semantic;
  if (!(so.threshold > -1 && so.threshold <= 1) || so.top_k <= 0) {
    return absl::InvalidArgumentError(
        "SemanticOptions: threshold must be in (-1, 1] and top_k > 0");
  }
  internal::VectorIndexOptions index_options;
  index_options.dimension = embedder.dimension();
  index_options.hnsw_min_vectors = so.hnsw_min_vectors;
  index_options.hnsw_m = so.hnsw_m;
  index_options.hnsw_ef_construction = so.hnsw_ef_construction;
  index_options.hnsw_ef_search = so.hnsw_ef_search;
  index_ = std::make_unique<internal::VectorIndex>(index_options);

  {
    absl::MutexLock lock(&feedback_mu_);
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), feedback_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const absl::string_view key = View(it->key());
      if (key.size() != 32) continue;
      wrong_pairs_.insert({*Key128::FromBytes(key.substr(0, 16)),
                           *Key128::FromBytes(key.substr(16))});
    }
  }

  absl::MutexLock lock(&write_mu_);
  std::string stored_name;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_cf_, kEmbedderKey, &stored_name);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading embedder");
  // Generations first: a re-embed must keep counting up from them, or a
  // stale index file could carry a generation that is current again.
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
    for (it->Seek(kGenerationPrefix);
         it->Valid() && it->key().starts_with(kGenerationPrefix); it->Next()) {
      absl::StatusOr<Key128> scope = Key128::FromBytes(
          View(it->key()).substr(std::strlen(kGenerationPrefix)));
      uint64_t generation = 0;
      if (!scope.ok() || !absl::SimpleAtoi(View(it->value()), &generation)) {
        return absl::DataLossError(
            absl::StrCat("malformed vector generation in '", path_, "'"));
      }
      generations_[*scope] = generation;
    }
  }
  if (options_.reembed_on_open && !options_.read_only) {
    // Asked for: also fills in entries stored without a vector.
    return Reembed();
  }
  if (s.ok() && stored_name != embedder.name()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cache at '", path_, "' holds vectors of embedder '", stored_name,
        "', not '", embedder.name(),
        "'; re-embed it (promptcache reembed) or open it with the same "
        "embedder"));
  }
  if (s.IsNotFound()) {
    // A cache that never had vectors: adopt this embedder (vectors of an
    // older, unnamed embedder cannot exist because the name is written
    // before any vector).
    if (options_.read_only) return absl::OkStatus();
    return FromRocks(
        db_->Put(write_options_, meta_cf_, kEmbedderKey, embedder.name()),
        "writing embedder name");
  }
  // Load saved index files whose generation matches; rebuild the rest.
  absl::flat_hash_set<Key128> rebuild;
  const std::string dir = absl::StrCat(path_, "/", kIndexDir);
  for (const auto& [scope, generation] : generations_) {
    if (!index_->LoadScope(scope, dir, generation).ok()) rebuild.insert(scope);
  }
  return RebuildScopes(rebuild);
}

absl::Status Cache::Impl::RebuildScopes(
    const absl::flat_hash_set<Key128>& scopes) {
  if (scopes.empty()) return absl::OkStatus();
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), vectors_cf_));
  internal::VectorRecord record;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!internal::DecodeVector(View(it->value()), &record).ok()) {
      return absl::DataLossError(absl::StrCat(
          "malformed stored vector for entry ",
          Key128::FromBytes(View(it->key())).value_or(Key128{}).ToHex()));
    }
    const Key128 scope{record.scope_hi, record.scope_lo};
    if (!scopes.contains(scope)) continue;
    if (record.vector.size() !=
        static_cast<size_t>(options_.embedder->dimension())) {
      return absl::DataLossError("stored vector of the wrong dimension");
    }
    absl::StatusOr<Key128> entry = Key128::FromBytes(View(it->key()));
    if (!entry.ok()) return entry.status();
    index_->Add(scope, *entry, Key128{record.context_hi, record.context_lo},
                internal::NumberSignature(record.text), record.vector.data());
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading vectors");
  for (const Key128& scope : scopes) dirty_scopes_.insert(scope);
  return absl::OkStatus();
}

absl::Status Cache::Impl::Reembed() {
  // Drop every vector, then embed each entry's last user turn again.
  rocksdb::WriteBatch clear;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), vectors_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      clear.Delete(vectors_cf_, it->key());
    }
  }
  clear.Put(meta_cf_, kEmbedderKey, options_.embedder->name());
  if (absl::Status s =
          FromRocks(db_->Write(write_options_, &clear), "clearing vectors");
      !s.ok()) {
    return s;
  }
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), entries_cf_));
  rocksdb::WriteBatch batch;
  std::vector<float> vector;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<internal::StoredEntry> entry =
        internal::DecodeEntry(View(it->value()));
    if (!entry.ok()) return entry.status();
    absl::StatusOr<Request> request =
        RequestFromCanonical(entry->canonical_request);
    if (!request.ok()) return request.status();
    absl::StatusOr<CanonicalizedRequest> canonical =
        Canonicalize(*request, options_.canonical);
    if (!canonical.ok()) return canonical.status();
    const Message* last = LastUserMessage(*request);
    if (last == nullptr || last->content.empty()) continue;
    if (!EmbedChecked(last->content, &vector).ok()) continue;
    absl::StatusOr<Key128> key = Key128::FromBytes(View(it->key()));
    if (!key.ok()) return key.status();
    PutVector(&batch, *key, canonical->keys, vector, last->content);
    index_->Add(canonical->keys.scope, *key, canonical->keys.context,
                internal::NumberSignature(last->content), vector.data());
    if (batch.Count() >= 1000) {
      if (absl::Status s =
              FromRocks(db_->Write(write_options_, &batch), "writing vectors");
          !s.ok()) {
        return s;
      }
      batch.Clear();
    }
  }
  return FromRocks(db_->Write(write_options_, &batch), "writing vectors");
}

void Cache::Impl::SaveIndexes() {
  absl::MutexLock lock(&write_mu_);
  const std::string dir = absl::StrCat(path_, "/", kIndexDir);
  for (const Key128& scope : dirty_scopes_) {
    // A failed save only costs a rebuild at the next open.
    index_->SaveScope(scope, dir, generations_[scope]).IgnoreError();
  }
  dirty_scopes_.clear();
}

absl::StatusOr<Response> Cache::Impl::FindSemantic(
    const Request& request, const RequestKeys& keys,
    std::optional<double> threshold, std::vector<float>* query_vector) {
  if (!semantic_on()) {
    return absl::FailedPreconditionError(
        "the semantic tier needs Options::embedder");
  }
  const Message* last = LastUserMessage(request);
  if (last == nullptr || last->content.empty()) {
    return absl::NotFoundError("no user turn to compare");
  }
  std::vector<float> local;
  std::vector<float>& vector = query_vector ? *query_vector : local;
  if (absl::Status s = EmbedChecked(last->content, &vector); !s.ok()) return s;
  ChargeEmbedding(request, last->content);

  const SemanticOptions& so = options_.semantic;
  double min_similarity = so.threshold;
  if (auto it = so.namespace_threshold.find(internal::NamespaceOf(request));
      it != so.namespace_threshold.end()) {
    min_similarity = it->second;
  }
  if (threshold.has_value()) min_similarity = *threshold;

  // No OpenMP team starts here: FAISS's HNSW searches a single query
  // serially and SimdFlatIP's scan is plain code.
  internal::GuardOptions guard_options;
  guard_options.max_unmatched_fraction = so.guard_max_unmatched_fraction;
  guard_options.max_swapped_fraction = so.guard_max_swapped_fraction;
  std::optional<internal::Guard> guard;
  if (so.guard) guard.emplace(last->content, guard_options);
  // Candidates of other conversations can fill the first top_k (a common
  // follow-up like "and if that fails?" in many chats): while a full batch
  // is all above the threshold and some of it belonged to other
  // conversations, look further, up to kMaxCandidates.
  constexpr int kMaxCandidates = 256;
  absl::flat_hash_set<Key128> examined;
  for (int k = so.top_k;; k = std::min(k * 4, kMaxCandidates)) {
    const std::vector<internal::VectorCandidate> candidates =
        index_->Search(keys.scope, vector.data(), k);
    int other_context = 0;
    for (const internal::VectorCandidate& c : candidates) {
      if (c.similarity < min_similarity) {
        return absl::NotFoundError("no near-duplicate");
      }
      // A wider search returns the first ones again.
      if (!examined.insert(c.entry).second) continue;
      if (c.context != keys.context) {
        ++other_context;
        continue;
      }
      if (c.entry == keys.exact) continue;
      // Different numbers always fail the guard: no need to read the text.
      if (guard.has_value() && c.numbers != guard->number_signature()) {
        continue;
      }
      {
        absl::MutexLock lock(&feedback_mu_);
        if (wrong_pairs_.contains({keys.exact, c.entry})) continue;
      }
      // Guard first (one read), the answer only for a candidate that passes.
      std::string value;
      internal::VectorRecord record;
      if (!db_->Get(rocksdb::ReadOptions(), vectors_cf_, c.entry.ToBytes(),
                    &value)
               .ok() ||
          !internal::DecodeVector(value, &record).ok()) {
        continue;
      }
      if (guard.has_value() && !guard->Check(record.text).pass) continue;
      absl::StatusOr<Response> answer = GetExact(c.entry, nullptr);
      if (!answer.ok()) continue;  // expired or purged meanwhile
      const double similarity = std::min(1.0, double{c.similarity});
      if (so.verifier &&
          !so.verifier(request, record.text, *answer, similarity)) {
        continue;
      }
      answer->similarity = similarity;
      answer->cache_status = CacheStatus::kSemanticHit;
      return answer;
    }
    if (static_cast<int>(candidates.size()) < k || k >= kMaxCandidates ||
        other_context == 0) {
      break;
    }
  }
  return absl::NotFoundError("no near-duplicate");
}

absl::Status Cache::Impl::ReportFalseHit(const Key128& request_key,
                                         const Key128& entry_key) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  // The semantic hit log; entry counters keep their interval.
  if (absl::Status s = FlushStats(/*entry_counters_always=*/false); !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&write_mu_);
  const std::string key = entry_key.ToBytes() + request_key.ToBytes();
  std::string value;
  rocksdb::Status got =
      db_->Get(rocksdb::ReadOptions(), semantic_hits_cf_, key, &value);
  if (got.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat(
        "entry ", entry_key.ToHex(), " never served a semantic hit to request ",
        request_key.ToHex()));
  }
  if (!got.ok()) return FromRocks(got, "reading semantic hit");
  internal::SemanticHitRecord record;
  if (absl::Status s = internal::DecodeSemanticHit(value, &record); !s.ok()) {
    return s;
  }
  if (record.reported_wrong) return absl::OkStatus();  // counted once
  record.reported_wrong = true;
  LedgerRow delta;
  if (absl::Status s = internal::SplitLedgerKey(record.ledger_key, &delta);
      !s.ok()) {
    return s;
  }
  delta.false_hits = 1;
  rocksdb::WriteBatch batch;
  batch.Put(semantic_hits_cf_, key, internal::EncodeSemanticHit(record));
  batch.Put(feedback_cf_, request_key.ToBytes() + entry_key.ToBytes(), "");
  if (absl::Status s = WriteBatchWithLedger(&batch, delta); !s.ok()) return s;
  absl::MutexLock feedback_lock(&feedback_mu_);
  wrong_pairs_.insert({request_key, entry_key});
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Cache::SemanticHitInfo>> Cache::Impl::SemanticHitsOf(
    const Key128& entry_key) {
  // The semantic hit log; entry counters keep their interval.
  if (absl::Status s = FlushStats(/*entry_counters_always=*/false); !s.ok()) {
    return s;
  }
  std::vector<Cache::SemanticHitInfo> out;
  const std::string prefix = entry_key.ToBytes();
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), semantic_hits_cf_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    internal::SemanticHitRecord record;
    if (absl::Status s =
            internal::DecodeSemanticHit(View(it->value()), &record);
        !s.ok()) {
      return s;
    }
    Cache::SemanticHitInfo info;
    info.request_key =
        Key128::FromBytes(View(it->key()).substr(16)).value_or(Key128{});
    info.query = record.query;
    info.similarity = record.similarity;
    info.count = record.count;
    info.last_served = absl::FromUnixMicros(record.last_us);
    info.reported_wrong = record.reported_wrong;
    out.push_back(std::move(info));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading hits");
  return out;
}

Cache::SemanticStats Cache::Impl::GetSemanticStats() {
  Cache::SemanticStats stats;
  if (!semantic_on()) return stats;
  stats.embedder = options_.embedder->name();
  stats.vectors = index_->live_vectors();
  stats.scopes = static_cast<int64_t>(index_->Scopes().size());
  stats.index_memory_bytes = index_->memory_bytes();
  return stats;
}

}  // namespace promptcache
