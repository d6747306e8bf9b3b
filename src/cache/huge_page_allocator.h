// An allocator for large hash-map arrays that asks for transparent huge
// pages. A map of a million keys is tens of MB probed at random: on 4 KiB
// pages nearly every probe is a TLB miss (a page walk, costly in a VM), on
// 2 MiB pages the whole array takes a few TLB entries. Small arrays come
// from the ordinary heap.
#ifndef PROMPTCACHE_SRC_CACHE_HUGE_PAGE_ALLOCATOR_H_
#define PROMPTCACHE_SRC_CACHE_HUGE_PAGE_ALLOCATOR_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
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

  // Large arrays are mapped on their own (not from the heap, whose ranges
  // the advice would outlive), 2 MiB-aligned, a whole number of huge pages.
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMinBytes) return std::allocator<T>().allocate(n);
    const size_t rounded = Rounded(bytes);
    void* mapping = mmap(nullptr, rounded + kHugePage, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) throw std::bad_alloc();
    char* base = static_cast<char*>(mapping);
    const size_t head =
        (kHugePage - reinterpret_cast<uintptr_t>(base) % kHugePage) % kHugePage;
    if (head > 0) munmap(base, head);
    if (kHugePage - head > 0) munmap(base + head + rounded, kHugePage - head);
    // Advice only: without huge pages the memory works on 4 KiB ones.
    madvise(base + head, rounded, MADV_HUGEPAGE);
    return reinterpret_cast<T*>(base + head);
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kMinBytes) {
      std::allocator<T>().deallocate(p, n);
    } else {
      munmap(p, Rounded(bytes));
    }
  }
  static size_t Rounded(size_t bytes) {
    return (bytes + kHugePage - 1) / kHugePage * kHugePage;
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
