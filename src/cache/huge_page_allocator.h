// An allocator for large hash-map arrays that asks for transparent huge
// pages. A map of a million keys is tens of MB probed at random: on 4 KiB
// pages nearly every probe is a TLB miss (a page walk, costly in a VM), on
// 2 MiB pages the whole array takes a few TLB entries. Small arrays come
// from the ordinary heap.
#ifndef PROMPTCACHE_SRC_CACHE_HUGE_PAGE_ALLOCATOR_H_
#define PROMPTCACHE_SRC_CACHE_HUGE_PAGE_ALLOCATOR_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <functional>
#include <new>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"

namespace promptcache::internal {

template <typename T>
class HugePageAllocator {
 public:
  using value_type = T;
  static constexpr size_t kHugePage = size_t{2} << 20;
  // Below this, huge pages would waste more than they save.
  static constexpr size_t kMinBytes = size_t{1} << 20;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: rebinding

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMinBytes) return std::allocator<T>().allocate(n);
    const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (p == nullptr) throw std::bad_alloc();
    // Advice only: without huge pages the memory works on 4 KiB ones.
    madvise(p, rounded, MADV_HUGEPAGE);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) {
    if (n * sizeof(T) < kMinBytes) {
      std::allocator<T>().deallocate(p, n);
    } else {
      std::free(p);
    }
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
  template <typename U>
  bool operator!=(const HugePageAllocator<U>&) const {
    return false;
  }
};

// A flat_hash_map whose slot array is on huge pages once it is large.
template <typename K, typename V>
using HugePageHashMap =
    absl::flat_hash_map<K, V, absl::Hash<K>, std::equal_to<K>,
                        HugePageAllocator<std::pair<const K, V>>>;

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_HUGE_PAGE_ALLOCATOR_H_
