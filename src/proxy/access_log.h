// One JSON line per proxied request. Holds no secrets: no keys, no headers,
// no prompt or answer text; the namespace is already a hash of the key.
#ifndef PROMPTCACHE_SRC_PROXY_ACCESS_LOG_H_
#define PROMPTCACHE_SRC_PROXY_ACCESS_LOG_H_

#include <cstdio>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace promptcache::proxy {

struct AccessRecord {
  absl::Time time;
  std::string method;
  std::string path;
  int http_status = 0;
  std::string cache_status;  // HIT, MISS, ..., PASSTHROUGH, ERROR
  std::string api;
  std::string ns;
  std::string backend;
  std::string model;
  bool stream = false;
  absl::Duration latency;
  size_t response_bytes = 0;
  double similarity = 0;
  std::string entry;
  double dollars_saved = 0;
  double dollars_spent = 0;
  std::string error;  // promptcache's own message, never upstream headers
};

class AccessLog {
 public:
  // "-" logs to stderr; otherwise appends to the file.
  static absl::StatusOr<std::unique_ptr<AccessLog>> Open(
      const std::string& path);
  ~AccessLog();
  void Write(const AccessRecord& record);

 private:
  AccessLog(std::FILE* file, bool owned) : file_(file), owned_(owned) {}
  absl::Mutex mu_;
  std::FILE* file_ ABSL_GUARDED_BY(mu_);
  const bool owned_;
};

}  // namespace promptcache::proxy

#endif  // PROMPTCACHE_SRC_PROXY_ACCESS_LOG_H_
