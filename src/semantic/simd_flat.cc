#include "semantic/simd_flat.h"

#include <immintrin.h>

#include <algorithm>
#include <queue>
#include <utility>
#include <vector>

#include "faiss/IndexHNSW.h"

namespace promptcache::internal {
namespace {

float DotScalar(const float* a, const float* b, size_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < d; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

__attribute__((target("avx2,fma"))) float DotAvx2(const float* a,
                                                  const float* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    acc0 =
        _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
                           _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= d; i += 8) {
    acc0 =
        _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  const __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 sum =
      _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  sum = _mm_hadd_ps(sum, sum);
  sum = _mm_hadd_ps(sum, sum);
  float result = _mm_cvtss_f32(sum);
  for (; i < d; ++i) result += a[i] * b[i];
  return result;
}

using DotFn = float (*)(const float*, const float*, size_t);

DotFn ChooseDot() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
             ? DotAvx2
             : DotScalar;
}

const DotFn kDot = ChooseDot();

struct DotComputer : faiss::FlatCodesDistanceComputer {
  DotComputer(const float* base, size_t d)
      : faiss::FlatCodesDistanceComputer(reinterpret_cast<const uint8_t*>(base),
                                         d * sizeof(float)),
        base(base),
        d(d) {}
  void set_query(const float* x) override { query = x; }
  float distance_to_code(const uint8_t* code) override {
    return kDot(query, reinterpret_cast<const float*>(code), d);
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    return kDot(base + i * d, base + j * d, d);
  }
  const float* base;
  size_t d;
  const float* query = nullptr;
};

}  // namespace

float Dot(const float* a, const float* b, size_t d) { return kDot(a, b, d); }
bool DotUsesAvx2() { return kDot == DotAvx2; }

void SimdFlatIP::search(idx_t n, const float* x, idx_t k, float* distances,
                        idx_t* labels,
                        const faiss::SearchParameters* /*params*/) const {
  const float* base = get_xb();
  const size_t dim = static_cast<size_t>(d);
  // A min-heap of the best k (similarity, label) so far.
  using Item = std::pair<float, idx_t>;
  std::vector<Item> heap;
  for (idx_t q = 0; q < n; ++q) {
    heap.clear();
    const float* query = x + q * dim;
    for (idx_t i = 0; i < ntotal; ++i) {
      const float s = kDot(query, base + i * dim, dim);
      if (static_cast<idx_t>(heap.size()) < k) {
        heap.emplace_back(s, i);
        std::push_heap(heap.begin(), heap.end(), std::greater<Item>());
      } else if (s > heap.front().first) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<Item>());
        heap.back() = {s, i};
        std::push_heap(heap.begin(), heap.end(), std::greater<Item>());
      }
    }
    std::sort_heap(heap.begin(), heap.end(), std::greater<Item>());
    for (idx_t j = 0; j < k; ++j) {
      const bool have = j < static_cast<idx_t>(heap.size());
      distances[q * k + j] = have ? heap[j].first : -1e30f;
      labels[q * k + j] = have ? heap[j].second : -1;
    }
  }
}

faiss::FlatCodesDistanceComputer* SimdFlatIP::get_FlatCodesDistanceComputer()
    const {
  return new DotComputer(get_xb(), static_cast<size_t>(d));
}

void UseSimdStorage(faiss::IndexHNSW* index) {
  auto* simd = new SimdFlatIP(index->d);
  if (auto* flat = dynamic_cast<faiss::IndexFlatCodes*>(index->storage)) {
    simd->codes = flat->codes;
    simd->ntotal = flat->ntotal;
  }
  if (index->own_fields) delete index->storage;
  index->storage = simd;
  index->own_fields = true;
}

}  // namespace promptcache::internal
