// False-hit feedback of the semantic tier: a reported pair is never served
// again and raises its entry's own cut; confirmations may lower it within
// the error bound; the semantic hits an entry served.

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "cache/semantic_internal.h"
#include "semantic/lexicon.h"

namespace promptcache {

using internal::EncodeEntryBar;
using internal::kBarPrefix;
using internal::kConfirmedPrefix;

absl::StatusOr<double> Cache::Impl::ScoreOfServedPair(const std::string& query,
                                                      const Key128& entry,
                                                      double similarity) {
  // Bars are in calibrated-score units; without a calibration they are
  // never read (only the reported pair is blocked), so any value will do.
  if (!calibration_.has_value()) return 0.0;
  std::string value;
  internal::VectorRecord record;
  absl::StatusOr<bool> found =
      store_->Get(Family::kVectors, entry.ToBytes(), &value);
  if (!found.ok())
    return Prefixed("reading the entry's vector", found.status());
  if (!*found) return 1.0;  // purged: nothing left to serve
  if (absl::Status s = internal::DecodeVector(value, &record); !s.ok()) {
    return s;
  }
  const internal::MatchDecider decider(query, CalibratedRule(),
                                       internal::Lexicon::Default());
  return decider.Decide(record.text, similarity).score;
}

void Cache::Impl::WriteEntryBar(const Key128& entry, const EntryBar& bar,
                                StoreBatch* batch) {
  batch->Put(Family::kFeedback, absl::StrCat(kBarPrefix, entry.ToBytes()),
             EncodeEntryBar(bar));
}

Cache::Impl::EntryBar Cache::Impl::BarOf(const Key128& entry) {
  absl::MutexLock lock(&feedback_mu_);
  auto it = entry_bars_.find(entry);
  return it == entry_bars_.end() ? EntryBar{} : it->second;
}

absl::StatusOr<internal::SemanticHitRecord> Cache::Impl::ReadSemanticHit(
    const Key128& request_key, const Key128& entry_key) {
  std::string value;
  absl::StatusOr<bool> found =
      store_->Get(Family::kSemanticHits,
                  entry_key.ToBytes() + request_key.ToBytes(), &value);
  if (!found.ok()) return Prefixed("reading semantic hit", found.status());
  if (!*found) {
    return absl::NotFoundError(absl::StrCat(
        "entry ", entry_key.ToHex(), " never served a semantic hit to request ",
        request_key.ToHex()));
  }
  internal::SemanticHitRecord record;
  if (absl::Status s = internal::DecodeSemanticHit(value, &record); !s.ok()) {
    return s;
  }
  return record;
}

absl::Status Cache::Impl::BeginFeedback() {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  // Feedback reads the semantic hit log, so pending hits go to it first
  // (before write_mu_, which the flush takes); entry counters keep their
  // interval.
  return FlushStats(/*entry_counters_always=*/false);
}

absl::Status Cache::Impl::ReportFalseHit(const Key128& request_key,
                                         const Key128& entry_key) {
  if (absl::Status s = BeginFeedback(); !s.ok()) return s;
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
  std::unique_ptr<StoreBatch> batch = store_->NewBatch();
  batch->Put(Family::kSemanticHits, key, internal::EncodeSemanticHit(record));
  batch->Put(Family::kFeedback, request_key.ToBytes() + entry_key.ToBytes(),
             "");
  WriteEntryBar(entry_key, bar, batch.get());
  if (absl::Status s = WriteBatchWithLedger(batch.get(), delta); !s.ok())
    return s;
  absl::MutexLock feedback_lock(&feedback_mu_);
  wrong_pairs_.insert({request_key, entry_key});
  entry_bars_[entry_key] = bar;
  return absl::OkStatus();
}

absl::Status Cache::Impl::ConfirmSemanticHit(const Key128& request_key,
                                             const Key128& entry_key) {
  if (absl::Status s = BeginFeedback(); !s.ok()) return s;
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
  absl::StatusOr<bool> found =
      store_->Get(Family::kFeedback, confirmed_key, &ignored);
  if (!found.ok()) return Prefixed("reading feedback", found.status());
  if (*found) return absl::OkStatus();  // counted once
  EntryBar bar = BarOf(entry_key);
  ++bar.confirmed;
  std::unique_ptr<StoreBatch> batch = store_->NewBatch();
  batch->Put(Family::kFeedback, confirmed_key, "");
  WriteEntryBar(entry_key, bar, batch.get());
  if (absl::Status s = Prefixed("writing feedback", store_->Write(batch.get()));
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
  std::unique_ptr<StoreIterator> it =
      store_->NewIterator(Family::kSemanticHits);
  for (it->Seek(prefix); it->Valid() && absl::StartsWith(it->key(), prefix);
       it->Next()) {
    internal::SemanticHitRecord record;
    if (absl::Status s = internal::DecodeSemanticHit(it->value(), &record);
        !s.ok()) {
      return s;
    }
    Cache::SemanticHitInfo info;
    info.request_key =
        Key128::FromBytes(it->key().substr(16)).value_or(Key128{});
    info.query = record.query;
    info.similarity = record.similarity;
    info.count = record.count;
    info.last_served = absl::FromUnixMicros(record.last_us);
    info.reported_wrong = record.reported_wrong;
    out.push_back(std::move(info));
  }
  if (!it->status().ok()) return Prefixed("reading hits", it->status());
  return out;
}

}  // namespace promptcache
