// The upstream: anything that turns a Request into a Response.
#ifndef PROMPTCACHE_MODEL_CLIENT_H_
#define PROMPTCACHE_MODEL_CLIENT_H_

#include <functional>

#include "absl/status/statusor.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace promptcache {

// Called on a cache miss, possibly from several threads at once. Return an
// error status for failures (never cached); return a Response with an
// incomplete finish reason for truncated answers (returned, never cached).
using ModelClient =
    std::function<absl::StatusOr<Response>(const Request& request)>;

}  // namespace promptcache

#endif  // PROMPTCACHE_MODEL_CLIENT_H_
