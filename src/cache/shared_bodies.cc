#include "cache/shared_bodies.h"

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "promptcache/keys.h"
#include "store/entry_codec.h"

namespace promptcache::internal {

// "b" + key -> the text; "r" + key -> its reference count.
std::string SharedBodies::KeyOf(absl::string_view text) {
  return HashBytes(text).ToBytes();
}

void SharedBodies::Changes::Ref(const std::string& key,
                                const std::string& text) {
  Change& c = refs_[key];
  ++c.adds;
  if (c.text.empty()) c.text = text;
}

void SharedBodies::Changes::UnrefEntry(absl::string_view entry_value) {
  absl::StatusOr<StoredEntry> entry = DecodeEntry(entry_value);
  if (!entry.ok()) return;
  for (const std::string& key : entry->body_keys) {
    if (!key.empty()) Unref(key);
  }
}

absl::Status SharedBodies::Apply(const Changes& changes,
                                 StoreBatch* batch) const {
  if (!enabled()) return absl::OkStatus();
  for (const auto& [key, change] : changes.refs_) {
    if (change.adds == 0 && change.removes == 0) continue;
    std::string refs_value;
    int64_t refs = 0;
    absl::StatusOr<bool> found =
        store_->Get(Family::kBodies, absl::StrCat("r", key), &refs_value);
    if (!found.ok()) return Prefixed("reading a body", found.status());
    if (*found && !absl::SimpleAtoi(refs_value, &refs)) refs = 0;
    // A missing body has no references left to remove: only the adds
    // count, and they bring its text back.
    const int64_t now_refs =
        refs > 0 ? refs + change.adds - change.removes : change.adds;
    if (now_refs <= 0) {
      batch->Delete(Family::kBodies, absl::StrCat("r", key));
      batch->Delete(Family::kBodies, absl::StrCat("b", key));
      continue;
    }
    if (refs <= 0) {
      if (change.text.empty()) continue;
      batch->Put(Family::kBodies, absl::StrCat("b", key), change.text);
    }
    batch->Put(Family::kBodies, absl::StrCat("r", key), absl::StrCat(now_refs));
  }
  return absl::OkStatus();
}

absl::Status SharedBodies::Resolve(const std::string& key, Answer* answer,
                                   const StoreReadOptions& read) const {
  if (!enabled()) return absl::DataLossError("body store missing");
  absl::StatusOr<bool> found =
      store_->Get(Family::kBodies, absl::StrCat("b", key), &answer->text, read);
  if (!found.ok()) return Prefixed("reading an answer body", found.status());
  if (!*found) return absl::NotFoundError("no entry");
  return absl::OkStatus();
}

absl::StatusOr<SharedBodies::Totals> SharedBodies::Count() const {
  Totals totals;
  std::unique_ptr<StoreIterator> it = store_->NewIterator(Family::kBodies);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const absl::string_view key = it->key();
    if (absl::StartsWith(key, "b")) {
      totals.bodies += 1;
      totals.bytes += static_cast<int64_t>(it->value().size());
    } else if (absl::StartsWith(key, "r")) {
      int64_t refs = 0;
      if (absl::SimpleAtoi(it->value(), &refs)) totals.refs += refs;
    }
  }
  if (!it->status().ok()) return Prefixed("reading bodies", it->status());
  return totals;
}

}  // namespace promptcache::internal
