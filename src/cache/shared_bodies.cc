#include "cache/shared_bodies.h"

#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cache/rocks_util.h"
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
                                 rocksdb::WriteBatch* batch) const {
  if (family_ == nullptr) return absl::OkStatus();
  for (const auto& [key, change] : changes.refs_) {
    if (change.adds == 0 && change.removes == 0) continue;
    std::string refs_value;
    int64_t refs = 0;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), family_,
                                 absl::StrCat("r", key), &refs_value);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading a body");
    if (s.ok() && !absl::SimpleAtoi(refs_value, &refs)) refs = 0;
    // A missing body has no references left to remove: only the adds
    // count, and they bring its text back.
    const int64_t now_refs =
        refs > 0 ? refs + change.adds - change.removes : change.adds;
    if (now_refs <= 0) {
      batch->Delete(family_, absl::StrCat("r", key));
      batch->Delete(family_, absl::StrCat("b", key));
      continue;
    }
    if (refs <= 0) {
      if (change.text.empty()) continue;
      batch->Put(family_, absl::StrCat("b", key), change.text);
    }
    batch->Put(family_, absl::StrCat("r", key), absl::StrCat(now_refs));
  }
  return absl::OkStatus();
}

absl::Status SharedBodies::Resolve(const std::string& key, Answer* answer,
                                   const rocksdb::ReadOptions& read) const {
  if (family_ == nullptr) return absl::DataLossError("body store missing");
  rocksdb::Status s =
      db_->Get(read, family_, absl::StrCat("b", key), &answer->text);
  if (s.IsNotFound()) return absl::NotFoundError("no entry");
  return FromRocks(s, "reading an answer body");
}

absl::StatusOr<SharedBodies::Totals> SharedBodies::Count() const {
  Totals totals;
  if (family_ == nullptr) return totals;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), family_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.starts_with("b")) {
      totals.bodies += 1;
      totals.bytes += static_cast<int64_t>(it->value().size());
    } else if (key.starts_with("r")) {
      int64_t refs = 0;
      if (absl::SimpleAtoi(View(it->value()), &refs)) totals.refs += refs;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading bodies");
  return totals;
}

}  // namespace promptcache::internal
