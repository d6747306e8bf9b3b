// Checks the ThreadSanitizer build itself (built only with
// -DPROMPTCACHE_SANITIZE=thread): `tsan_canary race` writes one counter
// from two threads with no lock and must be stopped by TSan (the ctest
// expects it to fail); `tsan_canary locked|await|notify` do the same under
// absl::Mutex, Mutex::Await and absl::Notification and must pass, which
// they do only while absl_annotations.cc tells TSan what Debian's
// uninstrumented abseil does.
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace {

constexpr int kRounds = 20000;

int Race() {
  long counter = 0;
  std::thread other([&] {
    for (int i = 0; i < kRounds; ++i) ++counter;
  });
  for (int i = 0; i < kRounds; ++i) ++counter;
  other.join();
  return counter > 0 ? 0 : 1;
}

int Locked() {
  absl::Mutex mu;
  long counter = 0;
  auto add = [&] {
    for (int i = 0; i < kRounds; ++i) {
      absl::MutexLock lock(&mu);
      ++counter;
    }
  };
  std::thread other(add);
  add();
  other.join();
  absl::MutexLock lock(&mu);
  return counter == 2 * kRounds ? 0 : 1;
}

// A producer fills a plain field under the lock; the consumer waits for it
// with Await, whose condition reads the field.
int Await() {
  absl::Mutex mu;
  int ready = 0;
  long payload = 0;
  std::thread producer([&] {
    for (int i = 1; i <= 1000; ++i) {
      absl::MutexLock lock(&mu);
      payload += i;
      ready = i;
    }
  });
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* r) { return *r == 1000; }, &ready));
  }
  producer.join();
  return payload == 500500 ? 0 : 1;
}

// Data written before Notify is read after WaitForNotification, no lock.
int Notify() {
  absl::Notification done;
  long payload = 0;
  std::thread producer([&] {
    payload = 42;
    done.Notify();
  });
  done.WaitForNotification();
  const long seen = payload;
  producer.join();
  return seen == 42 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "race") == 0) return Race();
  if (argc == 2 && std::strcmp(argv[1], "locked") == 0) return Locked();
  if (argc == 2 && std::strcmp(argv[1], "await") == 0) return Await();
  if (argc == 2 && std::strcmp(argv[1], "notify") == 0) return Notify();
  std::fprintf(stderr, "usage: tsan_canary race|locked|await|notify\n");
  return 2;
}
