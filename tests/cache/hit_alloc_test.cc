// An exact hit allocates only the strings of the Response it returns.
// Counted with a replacement operator new, on the calling thread only.
#include <cstddef>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "promptcache/cache.h"
#include "promptcache/cached_client.h"
#include "test_util.h"

namespace {

thread_local bool counting = false;
thread_local int64_t allocations = 0;

}  // namespace

// GCC cannot tell that these replace the global operators and warns that
// free() meets memory from operator new.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t size) {
  if (counting) ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

TEST(HitAllocationTest, ExactHitsAllocateOnlyTheReturnedStrings) {
  TempDir dir;
  Options options;
  // No background flush: it would take the pending counters away and make
  // the next hits grow them again (amortized, but not deterministic here).
  options.stats_flush_interval = absl::InfiniteDuration();
  absl::StatusOr<std::unique_ptr<Cache>> cache =
      Cache::Open(dir.path(), options);
  ASSERT_TRUE(cache.ok()) << cache.status();
  int upstream_calls = 0;
  CachedClient client(**cache, [&](const Request&) -> absl::StatusOr<Response> {
    ++upstream_calls;
    return MakeAnswer("An answer long enough not to fit in a short string.");
  });
  constexpr int kRequests = 100;
  std::vector<Request> requests;
  for (int i = 0; i < kRequests; ++i) {
    requests.push_back(MakeRequest("Question number " + std::to_string(i) +
                                   " about \"quotes\" and caf\xC3\xA9s?"));
    requests.back().params.temperature = 0;
    requests.back().params.max_tokens = 256;
    requests.back().params.stop = {"END", "STOP"};
    ASSERT_TRUE(client.Complete(requests.back()).ok());  // miss, stored
  }
  // Warm up: answers into the hot cache, pending counters created, the
  // per-thread buffers grown.
  for (int round = 0; round < 2; ++round) {
    for (const Request& r : requests) ASSERT_TRUE(client.Complete(r).ok());
  }
  constexpr int kHits = 1000;
  allocations = 0;
  counting = true;
  int exact_hits = 0;
  for (int i = 0; i < kHits; ++i) {
    absl::StatusOr<Response> hit = client.Complete(requests[i % kRequests]);
    exact_hits += hit.ok() && hit->cache_status == CacheStatus::kExactHit;
  }
  counting = false;
  EXPECT_EQ(exact_hits, kHits);
  EXPECT_EQ(upstream_calls, kRequests);
  // Per hit: the answer text only. The keys are Key128 values (they were
  // hex strings, two more allocations per hit); finish_reason fits in the
  // short-string buffer.
  EXPECT_LE(allocations, 1 * kHits) << allocations << " allocations";
}

}  // namespace
}  // namespace promptcache
