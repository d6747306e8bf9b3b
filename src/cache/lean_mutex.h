// A mutex for the exact-hit path.
//
// Debian's Abseil is built without NDEBUG, so absl::Mutex runs its deadlock
// detector on every Lock(): a process-wide spinlock and a graph lookup,
// ~300 instructions and one cache line shared by every thread. The locks a
// hit takes (hot answer and pending hit shards) use this plain mutex
// instead: held for a few hash-map operations. A hit never holds two; the
// one nesting is a hot shard's, then a hit shard's (HotAnswers' counts
// sink, on eviction and erase). It is glibc's adaptive mutex, which spins
// a little before it sleeps: a hit holds it for well under a microsecond,
// less than a futex sleep and wake-up costs.
#ifndef PROMPTCACHE_SRC_CACHE_LEAN_MUTEX_H_
#define PROMPTCACHE_SRC_CACHE_LEAN_MUTEX_H_

#include <pthread.h>

#include "absl/base/thread_annotations.h"

namespace promptcache::internal {

class ABSL_LOCKABLE LeanMutex {
 public:
  LeanMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
#if defined(PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP)
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    pthread_mutex_init(&mu_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~LeanMutex() { pthread_mutex_destroy(&mu_); }
  LeanMutex(const LeanMutex&) = delete;
  LeanMutex& operator=(const LeanMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { pthread_mutex_lock(&mu_); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { pthread_mutex_unlock(&mu_); }

 private:
  pthread_mutex_t mu_;
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
