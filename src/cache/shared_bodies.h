// Shared answer bodies: an answer of kMinBytes or more is stored once in the
// "bodies" family under a hash of its text, with a reference count, and the
// entries that got it keep only its key. Many prompts get the same long
// answer (a policy page, a refusal, a template), so this saves disk and
// budget. Not a lock owner: callers that change references hold the cache's
// write lock, so that reading a count and writing the new one is atomic.
#ifndef PROMPTCACHE_SRC_CACHE_SHARED_BODIES_H_
#define PROMPTCACHE_SRC_CACHE_SHARED_BODIES_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "promptcache/response.h"
#include "store/store.h"

namespace promptcache::internal {

class SharedBodies {
 public:
  // Shorter answers stay inside their entry.
  static constexpr size_t kMinBytes = 512;

  // A store without the bodies family is one from before shared bodies,
  // opened read-only (no entry refers to a body); then nothing is shared.
  explicit SharedBodies(Store* store) : store_(store) {}

  bool enabled() const { return store_->Has(Family::kBodies); }
  // The key a body of `text` is stored under.
  static std::string KeyOf(absl::string_view text);

  // Reference changes made by one write, applied with it.
  class Changes {
   public:
    void Ref(const std::string& key, const std::string& text);
    void Unref(const std::string& key) { ++refs_[key].removes; }
    // Unrefs every shared body of an encoded entry (one that does not decode
    // has none to give back).
    void UnrefEntry(absl::string_view entry_value);

   private:
    friend class SharedBodies;
    struct Change {
      int64_t adds = 0;
      int64_t removes = 0;
      std::string text;  // for adds: the body, in case it must be written
    };
    // Adds and removes are kept apart: a body found missing is rewritten
    // from the adds (its old references are gone with it).
    absl::flat_hash_map<std::string, Change> refs_;
  };
  // Puts `changes` into `batch`: new counts, new bodies, and deletions of
  // bodies no entry refers to any more. Reads the current counts.
  absl::Status Apply(const Changes& changes, StoreBatch* batch) const;

  // Fills `answer->text` from the body under `key`, read in `read`'s view.
  // NotFound when it is gone (its entry was deleted meanwhile).
  absl::Status Resolve(const std::string& key, Answer* answer,
                       const StoreReadOptions& read = {}) const;

  struct Totals {
    int64_t bodies = 0;
    int64_t bytes = 0;
    int64_t refs = 0;
  };
  // Counted over the whole family (CacheStats).
  absl::StatusOr<Totals> Count() const;

 private:
  Store* const store_;
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_SHARED_BODIES_H_
