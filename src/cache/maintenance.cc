// Cache::Impl: what operators use besides the request path: the savings
// report, stats, inspection, iteration and purge.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cache/cache_impl.h"
#include "cache/cache_internal.h"
#include "promptcache/cache.h"
#include "request/namespace.h"
#include "rocksdb/cache.h"

namespace promptcache {
namespace {

bool MatchesPurge(const PurgeFilter& filter, absl::string_view ns,
                  int64_t created_us, int64_t expires_us, int64_t now_us) {
  if (filter.ns.has_value() && ns != *filter.ns) return false;
  if (filter.created_before.has_value() &&
      absl::FromUnixMicros(created_us) >= *filter.created_before) {
    return false;
  }
  if (filter.expired_only && (expires_us == 0 || expires_us > now_us)) {
    return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<SavingsReport> Cache::Impl::Report() {
  // The ledger only: a report polled every second must not write every
  // hit entry's counter each time.
  if (absl::Status s = FlushStats(/*entry_counters_always=*/false); !s.ok()) {
    return s;
  }
  SavingsReport report;
  report.prices_date = options_.prices.prices_date();
  {
    absl::MutexLock lock(&write_mu_);
    report.rows = ledger_.Rows();
  }
  std::sort(report.rows.begin(), report.rows.end(),
            [](const LedgerRow& a, const LedgerRow& b) {
              return std::tie(a.ns, a.backend, a.model) <
                     std::tie(b.ns, b.backend, b.model);
            });
  for (const LedgerRow& row : report.rows) report.total.Add(row);
  return report;
}

EntryInfo Cache::Impl::ToInfo(const Key128& key, internal::StoredEntry e,
                              size_t stored_bytes,
                              const internal::EntryStats& stats,
                              const StoreReadOptions& read) const {
  for (size_t i = 0; i < e.body_keys.size() && i < e.answers.size(); ++i) {
    // A body deleted meanwhile leaves the text empty; the entry is going.
    if (!e.body_keys[i].empty()) {
      bodies_->Resolve(e.body_keys[i], &e.answers[i], read).IgnoreError();
    }
  }
  e.hit_count += stats.hits;
  e.saved_nusd += stats.saved_nusd;
  e.last_hit_us = std::max(e.last_hit_us, stats.last_hit_us);
  EntryInfo info;
  info.key = key;
  info.ns = std::move(e.ns);
  info.backend = std::move(e.backend);
  info.model = std::move(e.model);
  info.canonical_request = std::move(e.canonical_request);
  info.answers = std::move(e.answers);
  info.created = absl::FromUnixMicros(e.created_us);
  info.expires = FromMicros(e.expires_us, absl::InfiniteFuture());
  info.last_hit = FromMicros(e.last_hit_us, absl::InfinitePast());
  info.hit_count = e.hit_count;
  info.saved_nusd = e.saved_nusd;
  info.size_bytes = static_cast<int64_t>(stored_bytes);
  return info;
}

absl::StatusOr<EntryInfo> Cache::Impl::Inspect(const Key128& key) {
  if (absl::Status s = FlushStats(); !s.ok()) return s;
  const std::array<char, 16> bytes = KeyBytes(key);
  std::string value;
  // One consistent view: the entry and its shared body together.
  const std::unique_ptr<StoreView> view = store_->NewView();
  StoreReadOptions read;
  read.view = view.get();
  absl::StatusOr<bool> found =
      store_->Get(Family::kEntries, AsView(bytes), &value, read);
  if (!found.ok()) return Prefixed("reading entry", found.status());
  if (!*found) {
    return absl::NotFoundError(absl::StrCat("no entry with key ", key.ToHex()));
  }
  absl::StatusOr<internal::StoredEntry> entry = internal::DecodeEntry(value);
  if (!entry.ok()) return entry.status();
  internal::EntryStats stats;
  std::string stats_value;
  if (Found(store_->Get(Family::kEntryStats, AsView(bytes), &stats_value))) {
    internal::DecodeEntryStats(stats_value, &stats).IgnoreError();
  }
  return ToInfo(key, *std::move(entry), value.size() + bytes.size(), stats,
                read);
}

absl::Status Cache::Impl::ForEachEntry(
    const std::function<bool(const EntryInfo&)>& fn) {
  if (absl::Status s = FlushStats(); !s.ok()) return s;
  // One consistent view: an export never sees an entry without its body.
  const std::unique_ptr<StoreView> view = store_->NewView();
  StoreReadOptions read;
  read.view = view.get();
  std::unique_ptr<StoreIterator> it =
      store_->NewIterator(Family::kEntries, read);
  // Both families are keyed by entry key: walk them side by side.
  std::unique_ptr<StoreIterator> stats_it =
      store_->NewIterator(Family::kEntryStats, read);
  stats_it->SeekToFirst();
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<Key128> key = Key128::FromBytes(it->key());
    if (!key.ok()) {
      return absl::DataLossError("malformed entry key in the entries family");
    }
    while (stats_it->Valid() && stats_it->key().compare(it->key()) < 0) {
      stats_it->Next();
    }
    internal::EntryStats stats;
    if (stats_it->Valid() && stats_it->key() == it->key()) {
      internal::DecodeEntryStats(stats_it->value(), &stats).IgnoreError();
    }
    absl::StatusOr<internal::StoredEntry> entry =
        internal::DecodeEntry(it->value());
    if (!entry.ok()) {
      return absl::DataLossError(
          absl::StrCat("entry ", key->ToHex(), ": ", entry.status().message()));
    }
    if (!fn(ToInfo(*key, *std::move(entry),
                   it->key().size() + it->value().size(), stats, read))) {
      break;
    }
  }
  return Prefixed("reading entries", it->status());
}

Cache::MemoryStats Cache::Impl::GetMemoryStats() {
  Cache::MemoryStats m;
  m.budget_bytes = static_cast<int64_t>(options_.block_cache_bytes);
  m.used_bytes = static_cast<int64_t>(block_cache_->GetUsage());
  if (hot_ != nullptr) {
    m.hot_answer_bytes = static_cast<int64_t>(hot_->bytes());
    m.used_bytes += m.hot_answer_bytes;
    m.hot_answers = static_cast<int64_t>(hot_->items());
  }
  m.warming = warming_.load();
  m.memtable_bytes = store_->MemoryBytes();
  return m;
}

absl::StatusOr<CacheStats> Cache::Impl::Stats() {
  CacheStats stats;
  stats.unreadable_ledger_rows = unreadable_ledger_rows_;
  const int64_t now = NowMicros();
  absl::Status s = ForEachEntry([&](const EntryInfo& e) {
    stats.entries += 1;
    if (e.expires != absl::InfiniteFuture() &&
        absl::ToUnixMicros(e.expires) <= now) {
      stats.expired_entries += 1;
    }
    stats.answers += static_cast<int64_t>(e.answers.size());
    stats.entry_bytes += e.size_bytes;
    stats.hits_recorded += e.hit_count;
    return true;
  });
  // A damaged store still reports what it can, and says so.
  if (!s.ok()) stats.scan_error = s.ToString();
  std::error_code ec;
  for (const auto& file :
       std::filesystem::recursive_directory_iterator(path_, ec)) {
    if (file.is_regular_file(ec)) {
      stats.disk_bytes += static_cast<int64_t>(file.file_size(ec));
    }
  }
  {
    absl::MutexLock lock(&write_mu_);
    stats.budgeted_bytes = budget_.tracked_bytes();
    stats.evicted_entries = budget_.evicted();
  }
  stats.not_admitted = not_admitted_.load(std::memory_order_relaxed);
  stats.wal_bytes_dropped = wal_bytes_dropped_;
  stats.wal_recovery = wal_recovery_;
  stats.lookup_errors = lookup_errors_.load(std::memory_order_relaxed);
  stats.embedder_errors = embedder_errors_.load(std::memory_order_relaxed);
  stats.store_errors = store_errors_.load(std::memory_order_relaxed);
  {
    absl::MutexLock lock(&last_error_mu_);
    stats.last_error = last_error_;
  }
  absl::StatusOr<internal::SharedBodies::Totals> bodies = bodies_->Count();
  if (!bodies.ok()) return bodies.status();
  stats.shared_bodies = bodies->bodies;
  stats.shared_body_bytes = bodies->bytes;
  stats.shared_body_refs = bodies->refs;
  return stats;
}

absl::StatusOr<int64_t> Cache::Impl::Purge(const PurgeFilter& filter) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  if (absl::Status s = FlushStats(); !s.ok()) return s;
  const int64_t now = NowMicros();
  std::vector<Key128> candidates;
  absl::Status s = ForEachEntry([&](const EntryInfo& e) {
    const int64_t expires =
        e.expires == absl::InfiniteFuture() ? 0 : absl::ToUnixMicros(e.expires);
    if (MatchesPurge(filter, e.ns, absl::ToUnixMicros(e.created), expires,
                     now)) {
      candidates.push_back(e.key);
    }
    return true;
  });
  if (!s.ok()) return s;
  // No flush may be between two of its chunks while entries go.
  absl::MutexLock flush_lock(&flush_mu_);
  absl::MutexLock lock(&write_mu_);
  int64_t deleted = 0;
  for (size_t i = 0; i < candidates.size(); i += kPurgeBatch) {
    const size_t end = std::min(candidates.size(), i + kPurgeBatch);
    // Decided again under the write lock: the entry may have been stored
    // afresh since the scan (a refresh of an expired entry).
    absl::StatusOr<int64_t> chunk = DeleteEntriesLocked(
        absl::MakeConstSpan(candidates).subspan(i, end - i),
        [&](const std::string* value) {
          if (value == nullptr) return false;
          absl::StatusOr<internal::StoredEntry> entry =
              internal::DecodeEntry(*value);
          return !entry.ok() ||
                 MatchesPurge(filter, entry->ns, entry->created_us,
                              entry->expires_us, now);
        },
        "deleting entries");
    if (!chunk.ok()) return chunk.status();
    deleted += *chunk;
  }
  return deleted;
}

absl::StatusOr<int64_t> Cache::Impl::DeleteEntriesLocked(
    absl::Span<const Key128> keys,
    absl::FunctionRef<bool(const std::string* value)> doomed,
    absl::string_view what) {
  std::unique_ptr<StoreBatch> batch = store_->NewBatch();
  internal::SharedBodies::Changes bodies;
  std::vector<Key128> removed_vectors, deleted;
  for (const Key128& key : keys) {
    const std::array<char, 16> bytes = KeyBytes(key);
    std::string value;
    const bool found =
        Found(store_->Get(Family::kEntries, AsView(bytes), &value));
    if (!doomed(found ? &value : nullptr)) continue;
    if (found) bodies.UnrefEntry(value);
    batch->Delete(Family::kEntries, AsView(bytes));
    batch->Delete(Family::kEntryStats, AsView(bytes));
    DeleteVector(batch.get(), key, &removed_vectors);
    deleted.push_back(key);
  }
  if (absl::Status b = bodies_->Apply(bodies, batch.get()); !b.ok()) return b;
  if (absl::Status w = Prefixed(what, store_->Write(batch.get())); !w.ok()) {
    return w;
  }
  if (index_ != nullptr) {
    for (const Key128& key : removed_vectors) index_->Remove(key);
  }
  for (const Key128& key : deleted) {
    ForgetHitCounts(key);
    budget_.Forget(key);
    ForgetRoundRobin(key);
  }
  return static_cast<int64_t>(deleted.size());
}

absl::Status Cache::Impl::EvictToBudgetLocked() {
  const std::vector<internal::EvictionTracker::Slot> victims =
      budget_.TakeVictims(NowMicros());
  std::vector<Key128> keys;
  keys.reserve(victims.size());
  for (const internal::EvictionTracker::Slot& victim : victims) {
    keys.push_back(victim.key);
  }
  for (size_t i = 0; i < keys.size(); i += kPurgeBatch) {
    const size_t end = std::min(keys.size(), i + kPurgeBatch);
    absl::StatusOr<int64_t> evicted = DeleteEntriesLocked(
        absl::MakeConstSpan(keys).subspan(i, end - i),
        [](const std::string*) { return true; }, "evicting entries");
    if (!evicted.ok()) {
      // Victims not deleted stay counted and are tried at the next store.
      budget_.Restore(victims, i);
      return evicted.status();
    }
    budget_.CountEvicted(*evicted);
  }
  return absl::OkStatus();
}

}  // namespace promptcache
