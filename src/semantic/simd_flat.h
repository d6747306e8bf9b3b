// An IndexFlatIP whose inner products use AVX2/FMA when the CPU has them.
// Debian's FAISS 1.7.3 is built without SIMD kernels; as HNSW storage this
// speeds up graph search and insertion several-fold, and its own top-k scan
// replaces FAISS's flat search for small scopes.
#ifndef PROMPTCACHE_SRC_SEMANTIC_SIMD_FLAT_H_
#define PROMPTCACHE_SRC_SEMANTIC_SIMD_FLAT_H_

#include <cstddef>

#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"

namespace promptcache::internal {

// Inner product of two float vectors of length `d`.
float Dot(const float* a, const float* b, size_t d);

// Whether Dot uses AVX2 on this CPU.
bool DotUsesAvx2();

struct SimdFlatIP : faiss::IndexFlatIP {
  explicit SimdFlatIP(idx_t d) : faiss::IndexFlatIP(d) {}

  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer()
      const override;
};

// Gives an HNSW index (fresh or read from a file) SimdFlatIP storage,
// keeping its vectors.
void UseSimdStorage(faiss::IndexHNSW* index);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_SEMANTIC_SIMD_FLAT_H_
