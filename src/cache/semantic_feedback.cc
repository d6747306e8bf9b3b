// False-hit feedback of the semantic tier: a reported pair is never served
// again and raises its entry's own cut; confirmations may lower it within
// the error bound; the semantic hits an entry served.

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/rocks_util.h"
#include "cache/semantic_internal.h"
#include "semantic/lexicon.h"

namespace promptcache {

using internal::EncodeEntryBar;
using internal::FromRocks;
using internal::kBarPrefix;
using internal::kConfirmedPrefix;
using internal::View;

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

}  // namespace promptcache
