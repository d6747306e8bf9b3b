// In-memory vector search per scope. One index per scope (namespace +
// backend + model + params): a query can only ever see vectors of its own
// scope. Three kinds (VectorIndexOptions::kind): an inverted file that
// splits its lists as it grows (ivf_index.h, the default), exact (flat)
// search, or FAISS's HNSW once a scope holds `hnsw_min_vectors`. Removal
// marks a slot dead; a scope drops its dead slots when they pass a quarter
// of it.
//
// Vectors are added either at once (Add) or through a bounded queue that a
// background thread empties in batches (AddLater); queued vectors are
// searched directly, so an entry is found from the moment it is queued.
//
// RocksDB holds the truth; this is a view that can be saved to and loaded
// from files for fast open, and rebuilt from stored vectors at any time.
#ifndef PROMPTCACHE_SRC_SEMANTIC_VECTOR_INDEX_H_
#define PROMPTCACHE_SRC_SEMANTIC_VECTOR_INDEX_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "promptcache/keys.h"

namespace promptcache::internal {

enum class VectorIndexKind { kIvf, kFlat, kHnsw };

struct VectorIndexOptions {
  int dimension = 0;
  VectorIndexKind kind = VectorIndexKind::kIvf;
  int ivf_max_list_size = 512;
  int ivf_probes = 16;
  // AddLater's queue: a caller waits while this many vectors are queued.
  int max_queued_vectors = 16384;
  // kHnsw: a scope switches from exact search to HNSW at this many live
  // vectors.
  int hnsw_min_vectors = 4096;
  int hnsw_m = 16;
  int hnsw_ef_construction = 64;
  int hnsw_ef_search = 32;
};

struct VectorCandidate {
  Key128 entry;
  Key128 context;
  uint64_t numbers = 0;  // guard NumberSignature of the embedded text
  float similarity = 0;
};

class VectorIndex {
 public:
  explicit VectorIndex(VectorIndexOptions options);
  // Stops the background thread; vectors still queued are dropped (the
  // caller's store holds them: WaitForQueue first to keep them).
  ~VectorIndex();

  // Adds (or, for an entry already present, replaces) a vector, now.
  void Add(const Key128& scope, const Key128& entry, const Key128& context,
           uint64_t numbers, const float* vector);
  // Several at once (fewer FAISS calls for HNSW: one per scope).
  struct NewVector {
    Key128 scope, entry, context;
    uint64_t numbers = 0;
    const float* vector = nullptr;
  };
  void AddMany(const std::vector<NewVector>& vectors);
  // The same, by the background thread; searches see the vector at once.
  // Waits while max_queued_vectors are queued.
  void AddLater(const Key128& scope, const Key128& entry, const Key128& context,
                uint64_t numbers, const float* vector);
  // Returns once every vector queued before the call is in the index.
  void WaitForQueue();
  int64_t queued_vectors() const;
  // Forgets an entry's vector, queued or not; no-op when absent.
  void Remove(const Key128& entry);
  // Up to `k` live candidates of `scope`, most similar first.
  std::vector<VectorCandidate> Search(const Key128& scope, const float* query,
                                      int k) const;

  // Saves one scope to `<dir>/<scope hex>.{faiss|ivf,slots}` stamped with
  // `generation`; LoadScope reads it back if the stamp matches, the files
  // are intact and of this kind, else returns an error (the caller then
  // rebuilds). FailedPrecondition while vectors of the scope are queued.
  absl::Status SaveScope(const Key128& scope, const std::string& dir,
                         uint64_t generation) const;
  absl::Status LoadScope(const Key128& scope, const std::string& dir,
                         uint64_t generation);

  std::vector<Key128> Scopes() const;
  int64_t live_vectors() const;
  // Bytes held by FAISS indexes and slot tables (not counting allocator
  // overhead).
  int64_t memory_bytes() const;
  bool IsHnsw(const Key128& scope) const;
  // Lists of an IVF scope (0 for other kinds).
  int IvfLists(const Key128& scope) const;

 private:
  struct Scope;
  struct Queued {
    Key128 scope, entry, context;
    uint64_t numbers = 0;
    uint64_t sequence = 0;
    std::vector<float> vector;
  };
  struct Item {
    Key128 entry, context;
    uint64_t numbers = 0;
    const float* vector = nullptr;
  };
  Scope* FindScope(const Key128& scope) const;
  static void KillSlot(Scope& scope, int64_t slot);
  // Adds `vectors` (each entry once) scope by scope, in chunks that bound
  // how long a search waits for the index's locks.
  void AddInChunks(const std::vector<NewVector>& vectors)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(add_mu_);
  // Adds items of one scope, each entry once. Holds add_mu_.
  void AddItems(const Key128& scope, const std::vector<Item>& items)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(add_mu_);
  void RemoveFromIndex(const Key128& entry);
  void DrainQueue();

  const VectorIndexOptions options_;
  // One adder at a time (the queue's thread, Add), so that a scope's
  // rebuild never races another add.
  absl::Mutex add_mu_;
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(add_mu_);  // guards the maps,
                                                         // not the scopes
  absl::flat_hash_map<Key128, std::unique_ptr<Scope>> scopes_
      ABSL_GUARDED_BY(mu_);
  // entry -> (scope, slot)
  absl::flat_hash_map<Key128, std::pair<Key128, int64_t>> slots_
      ABSL_GUARDED_BY(mu_);

  // The queue. An item stays in `queue_` until it is in the index, and is
  // live while `latest_[entry]` is its sequence (a later AddLater, an Add
  // or a Remove of the entry makes it stale).
  mutable absl::Mutex queue_mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(queue_mu_);
  absl::flat_hash_map<Key128, uint64_t> latest_ ABSL_GUARDED_BY(queue_mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(queue_mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread drainer_;  // started by the first AddLater
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_VECTOR_INDEX_H_
