// The semantic tier of Cache::Impl: vectors in RocksDB, the FAISS view of
// them, near-duplicate lookup with the guard, and false-hit feedback.

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cache/cache_impl.h"
#include "cache/rocks_util.h"
#include "cost/token_estimate.h"
#include "request/namespace.h"
#include "semantic/lexicon.h"
#include "semantic/prompt_analysis.h"

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

// Feedback family: "bar:" + entry -> the entry's learned cut; "ok" + entry +
// request -> a confirmed pair (counted once); request + entry -> a pair
// reported wrong.
constexpr char kBarPrefix[] = "bar:";
constexpr char kConfirmedPrefix[] = "ok";

std::string EncodeEntryBar(const Cache::Impl::EntryBar& bar) {
  return absl::StrFormat("%.17g %d %d", bar.raised_to, bar.confirmed,
                         bar.wrong);
}

bool DecodeEntryBar(absl::string_view text, Cache::Impl::EntryBar* bar) {
  const std::vector<absl::string_view> f = absl::StrSplit(text, ' ');
  return f.size() == 3 && absl::SimpleAtod(f[0], &bar->raised_to) &&
         absl::SimpleAtoi(f[1], &bar->confirmed) &&
         absl::SimpleAtoi(f[2], &bar->wrong);
}

}  // namespace

bool Cache::Impl::TooLongForSemantic(const Message& last) {
  const size_t limit = options_.semantic.max_prompt_bytes;
  if (limit == 0 || last.content.size() <= limit) return false;
  long_prompts_skipped_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

absl::Status Cache::Impl::EmbedChecked(const std::string& text,
                                       std::vector<float>* vector) const {
  absl::Status s = EmbedUnchecked(text, vector);
  if (!s.ok()) vector->clear();  // never reused by StoreMiss
  // A zero vector (no known words) is not a failure.
  if (!s.ok() && !absl::IsNotFound(s)) {
    NoteFailure(Failure::kEmbedder, s);
  }
  return s;
}

absl::Status Cache::Impl::EmbedUnchecked(const std::string& text,
                                         std::vector<float>* vector) const {
  const Embedder& embedder = *options_.embedder;
  absl::Status s;
  // A user's embedder may throw: an error of the call, never an exception
  // out of the cache.
  try {
    s = embedder.Embed(absl::MakeConstSpan(&text, 1), vector);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("embedder ", embedder.name(), " threw: ", e.what()));
  } catch (...) {
    return absl::InternalError(
        absl::StrCat("embedder ", embedder.name(), " threw"));
  }
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
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), feedback_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const absl::string_view key = View(it->key());
      if (key.size() == 32) {
        wrong_pairs_.insert({*Key128::FromBytes(key.substr(0, 16)),
                             *Key128::FromBytes(key.substr(16))});
      } else if (absl::StartsWith(key, kBarPrefix) &&
                 key.size() == std::strlen(kBarPrefix) + 16) {
        EntryBar bar;
        if (!DecodeEntryBar(View(it->value()), &bar)) {
          return absl::DataLossError(
              absl::StrCat("malformed feedback record in '", path_, "'"));
        }
        entry_bars_[*Key128::FromBytes(key.substr(std::strlen(kBarPrefix)))] =
            bar;
      }
    }
    // A read error must not silently forget reported pairs.
    if (!it->status().ok()) return FromRocks(it->status(), "reading feedback");
  }

  // The index is ready when this returns, unless a background rebuild was
  // started (which says so when it ends).
  bool rebuilding_in_background = false;
  absl::Cleanup ready = [&] {
    if (!rebuilding_in_background) index_ready_.Notify();
  };
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
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), vectors_cf_));
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
      absl::StatusOr<Key128> entry = Key128::FromBytes(View(it->key()));
      // A vector that cannot be read only loses that entry's semantic hits
      // (`promptcache repair` removes it).
      if (!entry.ok() ||
          !internal::DecodeVector(View(it->value()), &record).ok() ||
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
      resume = it->key().ToString();
      continue;
    }
    done = true;
    if (!it->status().ok()) {
      NoteFailure(Failure::kLookup,
                  FromRocks(it->status(), "rebuilding the semantic index"));
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
    if (TooLongForSemantic(*last) ||
        !EmbedChecked(last->content, &vector).ok()) {
      continue;
    }
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

internal::MatchRule Cache::Impl::RuleFor(const Request& request,
                                         std::optional<double> threshold,
                                         std::string* description) const {
  const SemanticOptions& so = options_.semantic;
  std::optional<double> override = so.threshold;
  if (auto it = so.namespace_threshold.find(internal::NamespaceOf(request));
      it != so.namespace_threshold.end()) {
    override = it->second;
  }
  if (threshold.has_value()) override = threshold;
  internal::MatchRule rule;
  if (override.has_value()) {
    rule.min_similarity = *override;
    *description =
        absl::StrFormat("similarity >= %.4f (threshold override)", *override);
  } else if (calibration_.has_value()) {
    rule = CalibratedRule();
    *description = absl::StrFormat("calibrated (%s, target %g, cut %.4f)",
                                   calibration_->embedder,
                                   so.target_false_hit_rate, calibrated_cut_);
  } else {
    rule.min_similarity = so.uncalibrated_threshold;
    *description =
        absl::StrFormat("similarity >= %.4f (no calibration for %s)",
                        so.uncalibrated_threshold, options_.embedder->name());
  }
  return rule;
}

internal::MatchRule Cache::Impl::CalibratedRule() const {
  internal::MatchRule rule;
  rule.calibration = &*calibration_;
  rule.cut = calibrated_cut_;
  rule.similarity_floor = calibrated_floor_;
  rule.surface_rewrites = surface_rewrites_;
  return rule;
}

double Cache::Impl::EntryCut(const EntryBar& bar, double rule_cut) const {
  if (bar.wrong > 0) return std::max(rule_cut, bar.raised_to);
  // Rule of three: with n confirmations and no error, the error rate's
  // 95% upper bound is about 3 / n.
  const SemanticOptions& so = options_.semantic;
  if (bar.confirmed > 0 &&
      3.0 / static_cast<double>(bar.confirmed) <= so.target_false_hit_rate) {
    // Served pairs all scored above the cut, so what lies below is
    // unknown: step down by the bounded amount; a false hit reported there
    // raises the bar again (wrong > 0 above).
    return rule_cut - so.feedback_max_lowering;
  }
  return rule_cut;
}

std::vector<Cache::Impl::JudgedCandidate> Cache::Impl::JudgeCandidates(
    const RequestKeys& keys, const std::vector<float>& vector,
    const internal::MatchDecider& decider, bool all) {
  std::vector<JudgedCandidate> out;
  // No OpenMP team starts here: FAISS's HNSW searches a single query
  // serially and SimdFlatIP's scan is plain code.
  // Candidates of other conversations can fill the first top_k (a common
  // follow-up like "and if that fails?" in many chats): while a full batch
  // is all above the floor and some of it belonged to other conversations,
  // look further, up to kMaxCandidates.
  constexpr int kMaxCandidates = 256;
  // Explanations show the top candidates whatever their similarity.
  const double floor = all ? -2.0 : decider.similarity_floor();
  absl::flat_hash_set<Key128> examined;
  for (int k = options_.semantic.top_k;; k = std::min(k * 4, kMaxCandidates)) {
    const std::vector<internal::VectorCandidate> candidates =
        index_->Search(keys.scope, vector.data(), k);
    int other_context = 0;
    bool below_floor = false;
    for (const internal::VectorCandidate& c : candidates) {
      if (c.similarity < floor) {
        below_floor = true;
        break;
      }
      // A wider search returns the first ones again.
      if (!examined.insert(c.entry).second) continue;
      if (c.entry == keys.exact) continue;
      JudgedCandidate j;
      j.found = c;
      j.other_context = c.context != keys.context;
      other_context += j.other_context;
      if (j.other_context && !all) continue;
      // The pair's and the entry's feedback, under one lock.
      std::optional<EntryBar> bar;
      {
        absl::MutexLock lock(&feedback_mu_);
        j.wrong_pair = wrong_pairs_.contains({keys.exact, c.entry});
        if (auto it = entry_bars_.find(c.entry); it != entry_bars_.end()) {
          bar = it->second;
        }
      }
      if (j.wrong_pair && !all) continue;
      // Different numbers always meet the veto: no need to read the text.
      if (c.numbers != decider.number_signature() && !all) {
        j.decision.veto = "numbers differ";
        j.decision.score = -1;  // below every candidate that was judged
        out.push_back(std::move(j));
        continue;
      }
      std::string value;
      internal::VectorRecord record;
      if (!db_->Get(rocksdb::ReadOptions(), vectors_cf_, c.entry.ToBytes(),
                    &value)
               .ok() ||
          !internal::DecodeVector(value, &record).ok()) {
        continue;  // purged meanwhile
      }
      std::optional<double> entry_cut;
      if (bar.has_value()) entry_cut = EntryCut(*bar, calibrated_cut_);
      j.text = std::move(record.text);
      j.decision = decider.Decide(j.text, std::min(1.0, double{c.similarity}),
                                  entry_cut, bar.has_value() && bar->wrong > 0);
      out.push_back(std::move(j));
    }
    if (below_floor || static_cast<int>(candidates.size()) < k ||
        k >= kMaxCandidates || other_context == 0) {
      break;
    }
  }
  return out;
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
  if (TooLongForSemantic(*last)) {
    if (query_vector != nullptr) query_vector->clear();  // store none either
    return absl::NotFoundError(absl::StrCat(
        "semantic tier skipped: the last user turn has ", last->content.size(),
        " bytes, over SemanticOptions::max_prompt_bytes (",
        options_.semantic.max_prompt_bytes, ")"));
  }
  std::vector<float> local;
  std::vector<float>& vector = query_vector ? *query_vector : local;
  if (absl::Status s = EmbedChecked(last->content, &vector); !s.ok()) return s;
  ChargeEmbedding(request, last->content);

  std::string rule_text;
  internal::MatchRule rule = RuleFor(request, threshold, &rule_text);
  // Entry bars are in calibrated-score units: only the calibrated rule
  // reads them.
  const internal::MatchDecider decider(last->content, rule,
                                       internal::Lexicon::Default());
  std::vector<JudgedCandidate> judged =
      JudgeCandidates(keys, vector, decider, /*all=*/false);
  // Best score first; among the ones served, the first whose answer is
  // still there and that the verifier accepts.
  std::stable_sort(judged.begin(), judged.end(),
                   [](const JudgedCandidate& a, const JudgedCandidate& b) {
                     return a.decision.score > b.decision.score;
                   });
  const JudgedCandidate* refused = nullptr;
  for (const JudgedCandidate& j : judged) {
    if (!j.decision.serve) {
      if (refused == nullptr ||
          (!refused->decision.veto.empty() && j.decision.veto.empty())) {
        refused = &j;
      }
      continue;
    }
    absl::StatusOr<Response> answer = GetExact(j.found.entry, nullptr);
    if (!answer.ok()) continue;  // expired or purged meanwhile
    const double similarity = std::min(1.0, double{j.found.similarity});
    if (options_.semantic.verifier &&
        !options_.semantic.verifier(request, j.text, *answer, similarity)) {
      continue;
    }
    answer->similarity = similarity;
    answer->cache_status = CacheStatus::kSemanticHit;
    answer->semantic_decision = absl::StrCat(
        "served ", j.found.entry.ToHex(), ": ",
        j.decision.Explain(/*with_words=*/false), " by ", rule_text);
    return answer;
  }
  if (refused != nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "no near-duplicate: best candidate ", refused->found.entry.ToHex(),
        " refused: ", refused->decision.Explain(/*with_words=*/false), " by ",
        rule_text));
  }
  return absl::NotFoundError("no near-duplicate");
}

absl::StatusOr<Cache::SemanticExplanation> Cache::Impl::ExplainSemantic(
    const Request& request, std::optional<double> threshold) {
  if (!semantic_on()) {
    return absl::FailedPreconditionError(
        "the semantic tier needs Options::embedder");
  }
  absl::StatusOr<CanonicalizedRequest> canonical =
      Canonicalize(request, options_.canonical);
  if (!canonical.ok()) return canonical.status();
  const Message* last = LastUserMessage(request);
  if (last == nullptr || last->content.empty()) {
    return absl::InvalidArgumentError("the request has no user turn");
  }
  if (options_.semantic.max_prompt_bytes > 0 &&
      last->content.size() > options_.semantic.max_prompt_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the last user turn has ", last->content.size(),
        " bytes, over SemanticOptions::max_prompt_bytes (",
        options_.semantic.max_prompt_bytes, "): the semantic tier skips it"));
  }
  std::vector<float> vector;
  if (absl::Status s = EmbedChecked(last->content, &vector); !s.ok()) return s;
  Cache::SemanticExplanation out;
  const internal::MatchRule rule = RuleFor(request, threshold, &out.rule);
  const internal::MatchDecider decider(last->content, rule,
                                       internal::Lexicon::Default());
  std::vector<JudgedCandidate> judged =
      JudgeCandidates(canonical->keys, vector, decider, /*all=*/true);
  const auto names = internal::MatchFeatureNames();
  for (JudgedCandidate& j : judged) {
    Cache::SemanticCandidate c;
    c.entry = j.found.entry;
    c.prompt = std::move(j.text);
    c.similarity = std::min(1.0, double{j.found.similarity});
    c.score = j.decision.score;
    c.cut = j.decision.cut;
    c.veto = j.decision.veto;
    for (size_t i = 0; i < names.size(); ++i) {
      c.features.emplace_back(names[i], j.decision.features[i]);
    }
    c.other_conversation = j.other_context;
    c.reported_wrong = j.wrong_pair;
    c.decision = c.other_conversation ? "another conversation: never served"
                 : c.reported_wrong   ? "reported wrong for this request"
                                      : j.decision.Explain();
    // For now: whether it could be served; below, the one that would be.
    c.served = !c.other_conversation && !c.reported_wrong && j.decision.serve;
    out.candidates.push_back(std::move(c));
  }
  // The one FindSemantic would serve: the best score among those served.
  Cache::SemanticCandidate* chosen = nullptr;
  for (Cache::SemanticCandidate& c : out.candidates) {
    if (c.served && (chosen == nullptr || c.score > chosen->score)) {
      chosen = &c;
    }
    c.served = false;
  }
  if (chosen != nullptr) chosen->served = true;
  return out;
}

absl::StatusOr<double> Cache::Impl::ScoreOfServedPair(const std::string& query,
                                                      const Key128& entry,
                                                      double similarity) {
  // Bars are in calibrated-score units; without a calibration they are
  // never read (only the reported pair is blocked), so any value will do.
  if (!calibration_.has_value()) return 0.0;
  std::string value;
  internal::VectorRecord record;
  rocksdb::Status got =
      db_->Get(rocksdb::ReadOptions(), vectors_cf_, entry.ToBytes(), &value);
  if (got.IsNotFound()) return 1.0;  // purged: nothing left to serve
  if (!got.ok()) return FromRocks(got, "reading the entry's vector");
  if (absl::Status s = internal::DecodeVector(value, &record); !s.ok()) {
    return s;
  }
  const internal::MatchDecider decider(query, CalibratedRule(),
                                       internal::Lexicon::Default());
  return decider.Decide(record.text, similarity).score;
}

absl::Status Cache::Impl::WriteEntryBar(const Key128& entry,
                                        const EntryBar& bar,
                                        rocksdb::WriteBatch* batch) {
  return FromRocks(
      batch->Put(feedback_cf_, absl::StrCat(kBarPrefix, entry.ToBytes()),
                 EncodeEntryBar(bar)),
      "writing feedback");
}

Cache::Impl::EntryBar Cache::Impl::BarOf(const Key128& entry) {
  absl::MutexLock lock(&feedback_mu_);
  auto it = entry_bars_.find(entry);
  return it == entry_bars_.end() ? EntryBar{} : it->second;
}

absl::StatusOr<internal::SemanticHitRecord> Cache::Impl::ReadSemanticHit(
    const Key128& request_key, const Key128& entry_key) {
  std::string value;
  rocksdb::Status got =
      db_->Get(rocksdb::ReadOptions(), semantic_hits_cf_,
               entry_key.ToBytes() + request_key.ToBytes(), &value);
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
  return record;
}

absl::Status Cache::Impl::ReportFalseHit(const Key128& request_key,
                                         const Key128& entry_key) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  // The semantic hit log (before write_mu_, which the flush takes); entry
  // counters keep their interval.
  if (absl::Status s = FlushStats(/*entry_counters_always=*/false); !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&write_mu_);
  const std::string key = entry_key.ToBytes() + request_key.ToBytes();
  absl::StatusOr<internal::SemanticHitRecord> hit =
      ReadSemanticHit(request_key, entry_key);
  if (!hit.ok()) return hit.status();
  internal::SemanticHitRecord& record = *hit;
  if (record.reported_wrong) return absl::OkStatus();  // counted once
  record.reported_wrong = true;
  LedgerRow delta;
  if (absl::Status s = internal::SplitLedgerKey(record.ledger_key, &delta);
      !s.ok()) {
    return s;
  }
  delta.false_hits = 1;
  // The entry's own bar rises above the score this pair had.
  absl::StatusOr<double> score =
      ScoreOfServedPair(record.query, entry_key, record.similarity);
  if (!score.ok()) return score.status();
  EntryBar bar = BarOf(entry_key);
  ++bar.wrong;
  bar.raised_to =
      std::max(bar.raised_to, *score + options_.semantic.feedback_margin);
  rocksdb::WriteBatch batch;
  batch.Put(semantic_hits_cf_, key, internal::EncodeSemanticHit(record));
  batch.Put(feedback_cf_, request_key.ToBytes() + entry_key.ToBytes(), "");
  if (absl::Status s = WriteEntryBar(entry_key, bar, &batch); !s.ok()) {
    return s;
  }
  if (absl::Status s = WriteBatchWithLedger(&batch, delta); !s.ok()) return s;
  absl::MutexLock feedback_lock(&feedback_mu_);
  wrong_pairs_.insert({request_key, entry_key});
  entry_bars_[entry_key] = bar;
  return absl::OkStatus();
}

absl::Status Cache::Impl::ConfirmSemanticHit(const Key128& request_key,
                                             const Key128& entry_key) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  // The semantic hit log (before write_mu_, which the flush takes); entry
  // counters keep their interval.
  if (absl::Status s = FlushStats(/*entry_counters_always=*/false); !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&write_mu_);
  absl::StatusOr<internal::SemanticHitRecord> hit =
      ReadSemanticHit(request_key, entry_key);
  if (!hit.ok()) return hit.status();
  const internal::SemanticHitRecord& record = *hit;
  if (record.reported_wrong) {
    return absl::FailedPreconditionError(
        "this semantic hit was reported wrong; it cannot be confirmed");
  }
  const std::string confirmed_key = absl::StrCat(
      kConfirmedPrefix, entry_key.ToBytes(), request_key.ToBytes());
  std::string ignored;
  rocksdb::Status got =
      db_->Get(rocksdb::ReadOptions(), feedback_cf_, confirmed_key, &ignored);
  if (got.ok()) return absl::OkStatus();  // counted once
  if (!got.IsNotFound()) return FromRocks(got, "reading feedback");
  EntryBar bar = BarOf(entry_key);
  ++bar.confirmed;
  rocksdb::WriteBatch batch;
  batch.Put(feedback_cf_, confirmed_key, "");
  if (absl::Status s = WriteEntryBar(entry_key, bar, &batch); !s.ok()) {
    return s;
  }
  if (absl::Status s = FromRocks(WriteResuming(&batch), "writing feedback");
      !s.ok()) {
    return s;
  }
  absl::MutexLock feedback_lock(&feedback_mu_);
  entry_bars_[entry_key] = bar;
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
  stats.queued_vectors = index_->queued_vectors();
  stats.long_prompts_skipped = long_prompts_skipped_.load();
  stats.rebuilding = !index_ready_.HasBeenNotified();
  stats.unreadable_vectors = unreadable_vectors_.load();
  return stats;
}

}  // namespace promptcache
