// Small RocksDB glue shared by the cache's source files.
#ifndef PROMPTCACHE_SRC_CACHE_ROCKS_UTIL_H_
#define PROMPTCACHE_SRC_CACHE_ROCKS_UTIL_H_

#include <array>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "promptcache/keys.h"
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

// The 16-byte RocksDB key of an entry, without allocating.
inline std::array<char, 16> KeyBytes(const Key128& key) {
  std::array<char, 16> out;
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((key.hi >> (56 - 8 * i)) & 0xFF);
    out[8 + i] = static_cast<char>((key.lo >> (56 - 8 * i)) & 0xFF);
  }
  return out;
}

inline rocksdb::Slice AsSlice(const std::array<char, 16>& bytes) {
  return rocksdb::Slice(bytes.data(), bytes.size());
}

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_CACHE_ROCKS_UTIL_H_
