// ThreadSanitizer annotations for Debian's abseil, linked into every
// program of a -DPROMPTCACHE_SANITIZE=thread build (only there).
//
// Why: Debian builds abseil without TSan, so absl::Mutex's own annotations
// are compiled out and its lock word is changed by uninstrumented atomics.
// TSan then sees no happens-before edge from one critical section to the
// next, and every field guarded by an absl::Mutex would be reported as a
// race. Rebuilding abseil with TSan costs more than CI's time allows.
//
// How: the linker's --wrap sends our calls to the few absl::Mutex,
// absl::Notification and absl::CondVar functions through the wrappers
// below, which tell TSan what the real call does (__tsan_mutex_* for the
// lock, release/acquire for a notification), then call the real function.
// Calls made inside abseil itself are not wrapped; they never touch our
// data. Conditions passed to Await/LockWhen are wrapped too: abseil may
// evaluate them while it holds the lock but before the wrapper has told TSan
// so, and the condition reads guarded fields.
//
// The wrapped names are the Itanium-mangled symbols of Debian 12's abseil
// (inline namespace absl::debian3). cmake/TsanAbseil.cmake reads them from
// this file (every `__wrap_<symbol>` below); a different abseil fails to
// link (undefined __real_ symbol) instead of running unannotated.
#include <sanitizer/tsan_interface.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

constexpr unsigned kRead = __tsan_mutex_read_lock;

// A condition evaluated as a small critical section of its own (acquire,
// read, release): whichever thread evaluates it holds the real lock at that
// moment, but TSan has not been told so, and a waiter whose condition is
// still false gives the lock up again without passing through a wrapper.
struct AnnotatedCondition {
  absl::Mutex* mu;
  const absl::Condition* user;
};

bool EvalAnnotated(AnnotatedCondition* c) {
  __tsan_acquire(c->mu);
  const bool met = c->user->Eval();
  __tsan_release(c->mu);
  return met;
}

void AnnotateLock(absl::Mutex* mu, unsigned flags) {
  __tsan_mutex_pre_lock(mu, flags);
  __tsan_mutex_post_lock(mu, flags, 0);
}

void AnnotateUnlock(absl::Mutex* mu, unsigned flags) {
  __tsan_mutex_pre_unlock(mu, flags);
  __tsan_mutex_post_unlock(mu, flags);
}

// A wait in the manner of Mutex::Await: the lock is given up while waiting
// and held again after; `await` makes the real call with the annotated
// condition and says whether it was met.
template <typename AwaitFn>
bool AwaitAnnotated(absl::Mutex* mu, const absl::Condition& cond,
                    AwaitFn await) {
  AnnotatedCondition annotated{mu, &cond};
  const absl::Condition wrapped(EvalAnnotated, &annotated);
  AnnotateUnlock(mu, 0);
  const bool met = await(wrapped);
  AnnotateLock(mu, 0);
  return met;
}

}  // namespace

extern "C" {

// absl::Mutex::Lock()
void __real__ZN4absl7debian35Mutex4LockEv(absl::Mutex* mu);
void __wrap__ZN4absl7debian35Mutex4LockEv(absl::Mutex* mu) {
  __tsan_mutex_pre_lock(mu, 0);
  __real__ZN4absl7debian35Mutex4LockEv(mu);
  __tsan_mutex_post_lock(mu, 0, 0);
}

// absl::Mutex::Unlock()
void __real__ZN4absl7debian35Mutex6UnlockEv(absl::Mutex* mu);
void __wrap__ZN4absl7debian35Mutex6UnlockEv(absl::Mutex* mu) {
  __tsan_mutex_pre_unlock(mu, 0);
  __real__ZN4absl7debian35Mutex6UnlockEv(mu);
  __tsan_mutex_post_unlock(mu, 0);
}

// absl::Mutex::TryLock()
bool __real__ZN4absl7debian35Mutex7TryLockEv(absl::Mutex* mu);
bool __wrap__ZN4absl7debian35Mutex7TryLockEv(absl::Mutex* mu) {
  __tsan_mutex_pre_lock(mu, __tsan_mutex_try_lock);
  const bool locked = __real__ZN4absl7debian35Mutex7TryLockEv(mu);
  __tsan_mutex_post_lock(
      mu, locked ? __tsan_mutex_try_lock : __tsan_mutex_try_lock_failed, 0);
  return locked;
}

// absl::Mutex::ReaderLock()
void __real__ZN4absl7debian35Mutex10ReaderLockEv(absl::Mutex* mu);
void __wrap__ZN4absl7debian35Mutex10ReaderLockEv(absl::Mutex* mu) {
  __tsan_mutex_pre_lock(mu, kRead);
  __real__ZN4absl7debian35Mutex10ReaderLockEv(mu);
  __tsan_mutex_post_lock(mu, kRead, 0);
}

// absl::Mutex::ReaderUnlock()
void __real__ZN4absl7debian35Mutex12ReaderUnlockEv(absl::Mutex* mu);
void __wrap__ZN4absl7debian35Mutex12ReaderUnlockEv(absl::Mutex* mu) {
  __tsan_mutex_pre_unlock(mu, kRead);
  __real__ZN4absl7debian35Mutex12ReaderUnlockEv(mu);
  __tsan_mutex_post_unlock(mu, kRead);
}

// absl::Mutex::ReaderTryLock()
bool __real__ZN4absl7debian35Mutex13ReaderTryLockEv(absl::Mutex* mu);
bool __wrap__ZN4absl7debian35Mutex13ReaderTryLockEv(absl::Mutex* mu) {
  __tsan_mutex_pre_lock(mu, __tsan_mutex_try_read_lock);
  const bool locked = __real__ZN4absl7debian35Mutex13ReaderTryLockEv(mu);
  __tsan_mutex_post_lock(
      mu,
      locked ? __tsan_mutex_try_read_lock : __tsan_mutex_try_read_lock_failed,
      0);
  return locked;
}

// absl::Mutex::Await(const Condition&): the lock is given up while waiting.
void __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(
    absl::Mutex* mu, const absl::Condition& cond);
void __wrap__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(
    absl::Mutex* mu, const absl::Condition& cond) {
  AwaitAnnotated(mu, cond, [mu](const absl::Condition& wrapped) {
    __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(mu, wrapped);
    return true;
  });
}

// absl::Mutex::AwaitWithTimeout(const Condition&, Duration)
bool __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    absl::Mutex* mu, const absl::Condition& cond, absl::Duration timeout);
bool __wrap__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    absl::Mutex* mu, const absl::Condition& cond, absl::Duration timeout) {
  return AwaitAnnotated(mu, cond, [mu, timeout](const absl::Condition& wrapped) {
    return __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
        mu, wrapped, timeout);
  });
}

// absl::Mutex::LockWhen(const Condition&)
void __real__ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(
    absl::Mutex* mu, const absl::Condition& cond);
void __wrap__ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(
    absl::Mutex* mu, const absl::Condition& cond) {
  AnnotatedCondition annotated{mu, &cond};
  const absl::Condition wrapped(EvalAnnotated, &annotated);
  __tsan_mutex_pre_lock(mu, 0);
  __real__ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(mu, wrapped);
  __tsan_mutex_post_lock(mu, 0, 0);
}

// absl::Mutex::~Mutex(): the address may hold another mutex later.
void __real__ZN4absl7debian35MutexD1Ev(absl::Mutex* mu);
void __wrap__ZN4absl7debian35MutexD1Ev(absl::Mutex* mu) {
  __tsan_mutex_destroy(mu, 0);
  __real__ZN4absl7debian35MutexD1Ev(mu);
}

// absl::CondVar::Wait(Mutex*): gives up `mu` while waiting, holds it after.
void __real__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(absl::CondVar* cv,
                                                       absl::Mutex* mu);
void __wrap__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(absl::CondVar* cv,
                                                       absl::Mutex* mu) {
  AnnotateUnlock(mu, 0);
  __real__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(cv, mu);
  AnnotateLock(mu, 0);
}

// absl::Notification::Notify(): what came before it happens before the
// return of every wait on it. Not covered: HasBeenNotified() is inline and
// reads a private atomic TSan never saw written, so data must not be read
// on the strength of it alone on another thread (our code reads it only on
// the notifying thread or for a statistic; tools/tsan/check_wrapped.sh
// lists what is wrapped).
void __real__ZN4absl7debian312Notification6NotifyEv(absl::Notification* n);
void __wrap__ZN4absl7debian312Notification6NotifyEv(absl::Notification* n) {
  __tsan_release(n);
  __real__ZN4absl7debian312Notification6NotifyEv(n);
}

// absl::Notification::WaitForNotification() const
void __real__ZNK4absl7debian312Notification19WaitForNotificationEv(
    const absl::Notification* n);
void __wrap__ZNK4absl7debian312Notification19WaitForNotificationEv(
    const absl::Notification* n) {
  __real__ZNK4absl7debian312Notification19WaitForNotificationEv(n);
  __tsan_acquire(const_cast<absl::Notification*>(n));
}

// absl::Notification::WaitForNotificationWithTimeout(Duration) const
bool __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const absl::Notification* n, absl::Duration timeout);
bool __wrap__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const absl::Notification* n, absl::Duration timeout) {
  const bool notified =
      __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
          n, timeout);
  if (notified) __tsan_acquire(const_cast<absl::Notification*>(n));
  return notified;
}

}  // extern "C"
