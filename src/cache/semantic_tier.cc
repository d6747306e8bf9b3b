// The semantic tier of Cache::Impl: embedding the last user turn, its
// vector in RocksDB, and near-duplicate lookup with the match decision
// (FindSemantic, ExplainSemantic). Opening the index: semantic_index.cc;
// feedback: semantic_feedback.cc.

#include <cmath>
#include <stdexcept>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "cache/semantic_internal.h"
#include "cost/token_estimate.h"
#include "request/namespace.h"
#include "semantic/lexicon.h"

namespace promptcache {

using internal::GenerationKey;

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
  LedgerRow delta;
  delta.ns = internal::NamespaceOf(request);
  delta.backend = request.backend;
  delta.model = std::string(internal::LedgerModel(
      options_.prices, options_.pool_unpriced_models, request));
  delta.embedding_nusd = cost;
  hit_counters_.AddLedgerDelta(delta);
}

void Cache::Impl::BumpGeneration(StoreBatch* batch, const Key128& scope) {
  const uint64_t next = ++generations_[scope];
  batch->Put(Family::kMeta, GenerationKey(scope), std::to_string(next));
  dirty_scopes_.insert(scope);
}

void Cache::Impl::PutVector(StoreBatch* batch, const Key128& entry,
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
  batch->Put(Family::kVectors, entry.ToBytes(), internal::EncodeVector(record));
  BumpGeneration(batch, keys.scope);
}

void Cache::Impl::DeleteVector(StoreBatch* batch, const Key128& entry,
                               std::vector<Key128>* removed) {
  std::string value;
  if (!Found(store_->Get(Family::kVectors, entry.ToBytes(), &value))) {
    return;
  }
  internal::VectorRecord record;
  batch->Delete(Family::kVectors, entry.ToBytes());
  if (internal::DecodeVector(value, &record).ok()) {
    BumpGeneration(batch, Key128{record.scope_hi, record.scope_lo});
  }
  removed->push_back(entry);
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
      if (!Found(store_->Get(Family::kVectors, c.entry.ToBytes(), &value)) ||
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

}  // namespace promptcache
