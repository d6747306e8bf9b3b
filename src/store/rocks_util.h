// Small RocksDB glue shared by the cache's source files.
#ifndef PROMPTCACHE_SRC_STORE_ROCKS_UTIL_H_
#define PROMPTCACHE_SRC_STORE_ROCKS_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"

namespace promptcache::internal {

// A RocksDB status as an absl::Status prefixed with `what`.
inline absl::Status FromRocks(const rocksdb::Status& s,
                              absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsNotFound()) return absl::NotFoundError(message);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat(message,
                     " (is another process using this cache? read-only access "
                     "still works)"));
  }
  return absl::InternalError(message);
}

inline absl::string_view View(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_STORE_ROCKS_UTIL_H_
