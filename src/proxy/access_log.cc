#include "proxy/access_log.h"

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace promptcache::proxy {

absl::StatusOr<std::unique_ptr<AccessLog>> AccessLog::Open(
    const std::string& path) {
  if (path == "-")
    return std::unique_ptr<AccessLog>(new AccessLog(stderr, false));
  std::FILE* file = std::fopen(path.c_str(), "a");
  if (file == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "access log ", path, ": cannot open: ", std::strerror(errno)));
  }
  // Whole lines reach the file promptly without a flush per request.
  std::setvbuf(file, nullptr, _IOLBF, 1 << 16);
  return std::unique_ptr<AccessLog>(new AccessLog(file, true));
}

AccessLog::~AccessLog() {
  absl::MutexLock lock(&mu_);
  if (owned_) {
    std::fclose(file_);
  } else {
    std::fflush(file_);
  }
}

void AccessLog::Write(const AccessRecord& r) {
  nlohmann::json line = {
      {"time",
       absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", r.time, absl::UTCTimeZone())},
      {"method", r.method},
      {"path", r.path},
      {"status", r.http_status},
      {"cache", r.cache_status},
      {"latency_ms", absl::ToDoubleMilliseconds(r.latency)},
      {"bytes", r.response_bytes}};
  if (!r.api.empty()) {
    line["api"] = r.api;
    line["ns"] = r.ns;
    line["backend"] = r.backend;
    line["model"] = r.model;
    line["stream"] = r.stream;
    line["saved_usd"] = r.dollars_saved;
    line["spent_usd"] = r.dollars_spent;
  }
  if (r.similarity > 0) line["similarity"] = r.similarity;
  if (!r.entry.empty()) line["entry"] = r.entry;
  if (!r.error.empty()) line["error"] = r.error;
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
      "\n";
  absl::MutexLock lock(&mu_);
  std::fwrite(text.data(), 1, text.size(), file_);
}

}  // namespace promptcache::proxy
