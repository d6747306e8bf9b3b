// Reading a whole (small) file the library was pointed at: a price table,
// a calibration, a model's JSON, a client-key file.
#ifndef PROMPTCACHE_SRC_UTIL_FILE_TEXT_H_
#define PROMPTCACHE_SRC_UTIL_FILE_TEXT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace promptcache::internal {

// The file's bytes. Errors name `what` and the path: NotFound when it cannot
// be opened, InvalidArgument for a directory, DataLoss when a read fails.
absl::StatusOr<std::string> ReadFileText(const std::string& path,
                                         absl::string_view what);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_UTIL_FILE_TEXT_H_
