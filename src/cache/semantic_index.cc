// The semantic tier's index: opened with the cache (loaded from its saved
// files, or rebuilt from the vectors column family in the background),
// re-embedded for another embedder, saved at close; its stats.

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "cache/semantic_internal.h"
#include "semantic/lexicon.h"
#include "semantic/prompt_analysis.h"

namespace promptcache {

using internal::DecodeEntryBar;
using internal::kBarPrefix;
using internal::kEmbedderKey;
using internal::kGenerationPrefix;
using internal::kIndexDir;

absl::Status Cache::Impl::OpenSemantic() {
  const Embedder& embedder = *options_.embedder;
  if (embedder.dimension() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "embedder ", embedder.name(), " has dimension ", embedder.dimension()));
  }
  const SemanticOptions& so = options_.semantic;
  const auto similarity_ok = [](double t) { return t > -1 && t <= 1; };
  if (so.threshold.has_value() && !similarity_ok(*so.threshold)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SemanticOptions::threshold must be in (-1, 1]; got ", *so.threshold));
  }
  for (const auto& [ns, t] : so.namespace_threshold) {
    if (!similarity_ok(t)) {
      return absl::InvalidArgumentError(
          absl::StrCat("SemanticOptions::namespace_threshold['", ns,
                       "'] must be in (-1, 1]; got ", t));
    }
  }
  if (!similarity_ok(so.uncalibrated_threshold)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SemanticOptions::uncalibrated_threshold must be in (-1, 1]; got ",
        so.uncalibrated_threshold));
  }
  if (so.top_k <= 0) {
    return absl::InvalidArgumentError("SemanticOptions::top_k must be > 0");
  }
  // FAISS aborts on these rather than returning an error.
  if (so.hnsw_m < 2 || so.hnsw_m > 256 || so.hnsw_ef_construction < 1 ||
      so.hnsw_ef_search < 1 || so.hnsw_min_vectors < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SemanticOptions: hnsw_m must be in [2, 256] (got ", so.hnsw_m,
        "), hnsw_ef_construction and hnsw_ef_search >= 1 (got ",
        so.hnsw_ef_construction, ", ", so.hnsw_ef_search,
        "), hnsw_min_vectors >= 0 (got ", so.hnsw_min_vectors, ")"));
  }
  if (so.ivf_probes < 1 || so.ivf_probes > 65536 || so.ivf_max_list_size < 16 ||
      so.ivf_max_list_size > (1 << 20) || so.max_queued_vectors < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SemanticOptions: ivf_probes must be in [1, 65536] (got ",
        so.ivf_probes, "), ivf_max_list_size in [16, 1048576] (got ",
        so.ivf_max_list_size, "), max_queued_vectors >= 1 (got ",
        so.max_queued_vectors, ")"));
  }
  if (!(so.feedback_margin >= 0 && so.feedback_margin <= 1) ||
      !(so.feedback_max_lowering >= 0 && so.feedback_max_lowering <= 1)) {
    return absl::InvalidArgumentError(
        "SemanticOptions::feedback_margin and feedback_max_lowering must be "
        "in [0, 1]");
  }
  // The calibration: given, or shipped for this embedder, or none (then
  // judged by similarity).
  if (so.calibration.has_value()) {
    if (absl::Status s = so.calibration->Validate(); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("SemanticOptions::calibration: ", s.message()));
    }
    calibration_ = so.calibration;
    if (calibration_->embedder != embedder.name()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SemanticOptions::calibration was fitted for embedder '",
          calibration_->embedder, "', not '", embedder.name(), "'"));
    }
  } else if (absl::StatusOr<MatchCalibration> shipped =
                 MatchCalibration::Shipped(embedder.name());
             shipped.ok()) {
    calibration_ = *std::move(shipped);
  }
  if (calibration_.has_value()) {
    absl::StatusOr<double> cut = calibration_->CutFor(so.target_false_hit_rate);
    if (!cut.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SemanticOptions::target_false_hit_rate: ", cut.status().message()));
    }
    calibrated_cut_ = *cut;
    surface_rewrites_ =
        calibration_->SurfaceRewritesAt(so.target_false_hit_rate);
    calibrated_floor_ = internal::SimilarityFloor(
        *calibration_, std::max(0.0, *cut - so.feedback_max_lowering));
  } else if (!(so.target_false_hit_rate > 0 &&
               so.target_false_hit_rate <= 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SemanticOptions::target_false_hit_rate must be in (0, "
                     "0.5]; got ",
                     so.target_false_hit_rate));
  }
  // The lexicon is parsed on first use (~30 ms): here, at open, rather than
  // in the first lookup.
  internal::Lexicon::Default();
  internal::VectorIndexOptions index_options;
  index_options.dimension = embedder.dimension();
  index_options.kind = so.index == SemanticOptions::IndexKind::kFlat
                           ? internal::VectorIndexKind::kFlat
                       : so.index == SemanticOptions::IndexKind::kHnsw
                           ? internal::VectorIndexKind::kHnsw
                           : internal::VectorIndexKind::kIvf;
  index_options.ivf_probes = so.ivf_probes;
  index_options.ivf_max_list_size = so.ivf_max_list_size;
  index_options.max_queued_vectors = so.max_queued_vectors;
  index_options.hnsw_min_vectors = so.hnsw_min_vectors;
  index_options.hnsw_m = so.hnsw_m;
  index_options.hnsw_ef_construction = so.hnsw_ef_construction;
  index_options.hnsw_ef_search = so.hnsw_ef_search;
  index_ = std::make_unique<internal::VectorIndex>(index_options);

  {
    absl::MutexLock lock(&feedback_mu_);
    std::unique_ptr<StoreIterator> it = store_->NewIterator(Family::kFeedback);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const absl::string_view key = it->key();
      if (key.size() == 32) {
        wrong_pairs_.insert({*Key128::FromBytes(key.substr(0, 16)),
                             *Key128::FromBytes(key.substr(16))});
      } else if (absl::StartsWith(key, kBarPrefix) &&
                 key.size() == std::strlen(kBarPrefix) + 16) {
        EntryBar bar;
        if (!DecodeEntryBar(it->value(), &bar)) {
          return absl::DataLossError(
              absl::StrCat("malformed feedback record in '", path_, "'"));
        }
        entry_bars_[*Key128::FromBytes(key.substr(std::strlen(kBarPrefix)))] =
            bar;
      }
    }
    // A read error must not silently forget reported pairs.
    if (!it->status().ok()) return Prefixed("reading feedback", it->status());
  }

  // The index is ready when this returns, unless a background rebuild was
  // started (which says so when it ends).
  bool rebuilding_in_background = false;
  absl::Cleanup ready = [&] {
    if (!rebuilding_in_background) index_ready_.Notify();
  };
  absl::MutexLock lock(&write_mu_);
  std::string stored_name;
  absl::StatusOr<bool> has_name =
      store_->Get(Family::kMeta, kEmbedderKey, &stored_name);
  if (!has_name.ok()) return Prefixed("reading embedder", has_name.status());
  // Generations first: a re-embed must keep counting up from them, or a
  // stale index file could carry a generation that is current again.
  {
    std::unique_ptr<StoreIterator> it = store_->NewIterator(Family::kMeta);
    for (it->Seek(kGenerationPrefix);
         it->Valid() && absl::StartsWith(it->key(), kGenerationPrefix);
         it->Next()) {
      absl::StatusOr<Key128> scope =
          Key128::FromBytes(it->key().substr(std::strlen(kGenerationPrefix)));
      uint64_t generation = 0;
      if (!scope.ok() || !absl::SimpleAtoi(it->value(), &generation)) {
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
  if (*has_name && stored_name != embedder.name()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cache at '", path_, "' holds vectors of embedder '", stored_name,
        "', not '", embedder.name(),
        "'; re-embed it (promptcache reembed) or open it with the same "
        "embedder"));
  }
  if (!*has_name) {
    // A cache that never had vectors: adopt this embedder (vectors of an
    // older, unnamed embedder cannot exist because the name is written
    // before any vector).
    if (options_.read_only) return absl::OkStatus();
    std::unique_ptr<StoreBatch> batch = store_->NewBatch();
    batch->Put(Family::kMeta, kEmbedderKey, embedder.name());
    return Prefixed("writing embedder name", store_->Write(batch.get()));
  }
  // Load saved index files whose generation matches; rebuild the rest.
  absl::flat_hash_set<Key128> rebuild;
  const std::string dir = absl::StrCat(path_, "/", kIndexDir);
  for (const auto& [scope, generation] : generations_) {
    if (!index_->LoadScope(scope, dir, generation).ok()) rebuild.insert(scope);
  }
  if (rebuild.empty()) return absl::OkStatus();
  rebuilding_scopes_ = rebuild;
  if (options_.semantic.rebuild_index_in_background) {
    rebuilding_in_background = true;
    indexer_ = std::thread([this, rebuild = std::move(rebuild)]() mutable {
      RebuildScopes(std::move(rebuild));
      index_ready_.Notify();
    });
    return absl::OkStatus();
  }
  write_mu_.Unlock();
  RebuildScopes(std::move(rebuild));
  write_mu_.Lock();
  return absl::OkStatus();
}

void Cache::Impl::RebuildScopes(absl::flat_hash_set<Key128> scopes) {
  // Chunks small enough that a store waits little for one (~64 HNSW adds).
  constexpr int kChunk = 64;
  std::string resume;
  bool done = false;
  while (!done && !Stopping()) {
    absl::MutexLock lock(&write_mu_);
    std::unique_ptr<StoreIterator> it = store_->NewIterator(Family::kVectors);
    // `resume`: the first key not yet read.
    if (resume.empty()) {
      it->SeekToFirst();
    } else {
      it->Seek(resume);
    }
    std::vector<internal::VectorRecord> records(kChunk);
    std::vector<internal::VectorIndex::NewVector> found;
    for (int n = 0; it->Valid() && n < kChunk; it->Next(), ++n) {
      internal::VectorRecord& record = records[n];
      absl::StatusOr<Key128> entry = Key128::FromBytes(it->key());
      // A vector that cannot be read only loses that entry's semantic hits
      // (`promptcache repair` removes it).
      if (!entry.ok() || !internal::DecodeVector(it->value(), &record).ok() ||
          record.vector.size() !=
              static_cast<size_t>(options_.embedder->dimension())) {
        unreadable_vectors_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      const Key128 scope{record.scope_hi, record.scope_lo};
      if (!scopes.contains(scope)) continue;
      found.push_back(
          {scope, *entry, Key128{record.context_hi, record.context_lo},
           internal::NumberSignature(record.text), record.vector.data()});
    }
    index_->AddMany(found);
    if (it->Valid()) {
      resume = std::string(it->key());
      continue;
    }
    done = true;
    if (!it->status().ok()) {
      NoteFailure(Failure::kLookup,
                  Prefixed("rebuilding the semantic index", it->status()));
    } else {
      // Whole now: saved at close like any other.
      for (const Key128& scope : scopes) {
        rebuilding_scopes_.erase(scope);
        dirty_scopes_.insert(scope);
      }
    }
  }
}

void Cache::Impl::WaitForSemanticIndex() {
  if (!semantic_on()) return;
  index_ready_.WaitForNotification();
  index_->WaitForQueue();
}

absl::Status Cache::Impl::Reembed() {
  // Drop every vector, then embed each entry's last user turn again.
  std::unique_ptr<StoreBatch> clear = store_->NewBatch();
  {
    std::unique_ptr<StoreIterator> it = store_->NewIterator(Family::kVectors);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      clear->Delete(Family::kVectors, it->key());
    }
  }
  clear->Put(Family::kMeta, kEmbedderKey, options_.embedder->name());
  if (absl::Status s = Prefixed("clearing vectors", store_->Write(clear.get()));
      !s.ok()) {
    return s;
  }
  std::unique_ptr<StoreIterator> it = store_->NewIterator(Family::kEntries);
  std::unique_ptr<StoreBatch> batch = store_->NewBatch();
  std::vector<float> vector;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<internal::StoredEntry> entry =
        internal::DecodeEntry(it->value());
    if (!entry.ok()) return entry.status();
    absl::StatusOr<Request> request =
        RequestFromCanonical(entry->canonical_request);
    if (!request.ok()) return request.status();
    absl::StatusOr<CanonicalizedRequest> canonical =
        Canonicalize(*request, options_.canonical);
    if (!canonical.ok()) return canonical.status();
    const Message* last = LastUserMessage(*request);
    if (last == nullptr || last->content.empty()) continue;
    if (TooLongForSemantic(*last) ||
        !EmbedChecked(last->content, &vector).ok()) {
      continue;
    }
    absl::StatusOr<Key128> key = Key128::FromBytes(it->key());
    if (!key.ok()) return key.status();
    PutVector(batch.get(), *key, canonical->keys, vector, last->content);
    index_->Add(canonical->keys.scope, *key, canonical->keys.context,
                internal::NumberSignature(last->content), vector.data());
    if (batch->Count() >= 1000) {
      if (absl::Status s =
              Prefixed("writing vectors", store_->Write(batch.get()));
          !s.ok()) {
        return s;
      }
      batch = store_->NewBatch();
    }
  }
  return Prefixed("writing vectors", store_->Write(batch.get()));
}

void Cache::Impl::SaveIndexes() {
  if (index_ == nullptr) return;  // Open failed before making it
  index_->WaitForQueue();         // a saved scope holds all its vectors
  absl::MutexLock lock(&write_mu_);
  const std::string dir = absl::StrCat(path_, "/", kIndexDir);
  for (const Key128& scope : dirty_scopes_) {
    if (rebuilding_scopes_.contains(scope)) continue;
    // A failed save only costs a rebuild at the next open.
    index_->SaveScope(scope, dir, generations_[scope]).IgnoreError();
  }
  dirty_scopes_.clear();
}

Cache::SemanticStats Cache::Impl::GetSemanticStats() {
  Cache::SemanticStats stats;
  if (!semantic_on()) return stats;
  stats.embedder = options_.embedder->name();
  stats.vectors = index_->live_vectors();
  stats.scopes = static_cast<int64_t>(index_->Scopes().size());
  stats.index_memory_bytes = index_->memory_bytes();
  stats.queued_vectors = index_->queued_vectors();
  stats.long_prompts_skipped = long_prompts_skipped_.load();
  stats.rebuilding = !index_ready_.HasBeenNotified();
  stats.unreadable_vectors = unreadable_vectors_.load();
  return stats;
}

}  // namespace promptcache
