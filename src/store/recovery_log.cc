#include "store/recovery_log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace promptcache::internal {

RecoveryLog::RecoveryLog(std::shared_ptr<rocksdb::Logger> inner)
    : rocksdb::Logger(inner->GetInfoLogLevel()), inner_(std::move(inner)) {}

void RecoveryLog::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

void RecoveryLog::Logv(rocksdb::InfoLogLevel level, const char* format,
                       va_list ap) {
  if (level >= rocksdb::InfoLogLevel::WARN_LEVEL) {
    va_list copy;
    va_copy(copy, ap);
    char line[512];
    std::vsnprintf(line, sizeof(line), format, copy);
    va_end(copy);
    // db_impl_open.cc: "%s: dropping %d bytes; %s" for each skipped part.
    if (const char* at = std::strstr(line, ": dropping "); at != nullptr) {
      const long long bytes = std::strtoll(at + 11, nullptr, 10);
      absl::MutexLock lock(&mu_);
      dropped_bytes_ += bytes > 0 ? bytes : 0;
      if (dropped_lines_.size() < 16) dropped_lines_.emplace_back(line);
    }
  }
  inner_->Logv(level, format, ap);
}

int64_t RecoveryLog::dropped_bytes() const {
  absl::MutexLock lock(&mu_);
  return dropped_bytes_;
}

std::vector<std::string> RecoveryLog::dropped_lines() const {
  absl::MutexLock lock(&mu_);
  return dropped_lines_;
}

}  // namespace promptcache::internal
