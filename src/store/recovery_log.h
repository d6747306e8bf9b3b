// RocksDB's info log, passed through to its LOG file, keeping what
// write-ahead-log recovery dropped: RocksDB reports that only there.
#ifndef PROMPTCACHE_SRC_STORE_RECOVERY_LOG_H_
#define PROMPTCACHE_SRC_STORE_RECOVERY_LOG_H_

#include <cstdarg>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/env.h"

namespace promptcache::internal {

class RecoveryLog : public rocksdb::Logger {
 public:
  // `inner` (RocksDB's own file logger) receives every line.
  explicit RecoveryLog(std::shared_ptr<rocksdb::Logger> inner);

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  void Logv(rocksdb::InfoLogLevel level, const char* format,
            va_list ap) override;
  void Flush() override { inner_->Flush(); }
  size_t GetLogFileSize() const override { return inner_->GetLogFileSize(); }

  // Bytes of the write-ahead log that recovery skipped, and RocksDB's lines
  // saying so ("<file>: dropping N bytes; Corruption: ...").
  int64_t dropped_bytes() const;
  std::vector<std::string> dropped_lines() const;

 protected:
  rocksdb::Status CloseImpl() override { return inner_->Close(); }

 private:
  std::shared_ptr<rocksdb::Logger> inner_;
  mutable absl::Mutex mu_;
  int64_t dropped_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> dropped_lines_ ABSL_GUARDED_BY(mu_);
};

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_STORE_RECOVERY_LOG_H_
