// A mutex for the exact-hit path.
//
// Debian's Abseil is built without NDEBUG, so absl::Mutex runs its deadlock
// detector on every Lock(): a process-wide spinlock and a graph lookup,
// ~300 instructions and one cache line shared by every thread. The locks a
// hit takes (hot answer and pending hit shards) use this plain mutex
// instead: held for a few hash-map operations, never nested.
#ifndef PROMPTCACHE_SRC_CACHE_LEAN_MUTEX_H_
#define PROMPTCACHE_SRC_CACHE_LEAN_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace promptcache::internal {

class ABSL_LOCKABLE LeanMutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE LeanMutexLock {
 public:
  explicit LeanMutexLock(LeanMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->Lock();
  }
  ~LeanMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  LeanMutexLock(const LeanMutexLock&) = delete;
  LeanMutexLock& operator=(const LeanMutexLock&) = delete;

 private:
  LeanMutex* const mu_;
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_LEAN_MUTEX_H_
