// In-memory vector search per scope, over FAISS. One index per scope
// (namespace + backend + model + params): a query can only ever see vectors
// of its own scope. Exact (flat) search while a scope is small, HNSW once it
// holds `hnsw_min_vectors`. Removal marks a slot dead; a scope is rebuilt
// without its dead slots when they pass a quarter of it.
//
// RocksDB holds the truth; this is a view that can be saved to and loaded
// from files for fast open, and rebuilt from stored vectors at any time.
#ifndef PROMPTCACHE_SRC_SEMANTIC_VECTOR_INDEX_H_
#define PROMPTCACHE_SRC_SEMANTIC_VECTOR_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "promptcache/keys.h"

namespace promptcache::internal {

struct VectorIndexOptions {
  int dimension = 0;
  // A scope switches from exact search to HNSW at this many live vectors.
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
  ~VectorIndex();

  // Adds (or, for an entry already present, replaces) a vector.
  void Add(const Key128& scope, const Key128& entry, const Key128& context,
           uint64_t numbers, const float* vector);
  // Forgets an entry's vector; no-op when absent.
  void Remove(const Key128& entry);
  // Up to `k` live candidates of `scope`, most similar first.
  std::vector<VectorCandidate> Search(const Key128& scope, const float* query,
                                      int k) const;

  // Saves one scope to `<dir>/<scope hex>.{faiss,slots}` stamped with
  // `generation`; LoadScope reads it back if the stamp matches and the files
  // are intact, else returns an error (the caller then rebuilds).
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

 private:
  struct Scope;
  Scope* FindScope(const Key128& scope) const;
  Scope* GetOrCreateScope(const Key128& scope);

  const VectorIndexOptions options_;
  mutable absl::Mutex mu_;  // guards the maps, not the scopes' contents
  absl::flat_hash_map<Key128, std::unique_ptr<Scope>> scopes_
      ABSL_GUARDED_BY(mu_);
  // entry -> (scope, slot)
  absl::flat_hash_map<Key128, std::pair<Key128, int64_t>> slots_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_VECTOR_INDEX_H_
