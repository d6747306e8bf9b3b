// The x-promptcache-* request headers: per-call cache controls, the way
// LLM gateways let a client steer the cache without changing its SDK.
#ifndef PROMPTCACHE_SRC_PROXY_CONTROL_HEADERS_H_
#define PROMPTCACHE_SRC_PROXY_CONTROL_HEADERS_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "promptcache/cached_client.h"

namespace promptcache::proxy {

struct Controls {
  CallOptions call;
  // x-promptcache-namespace, validated.
  std::optional<std::string> ns;
};

// Looks a header up by lower-case name; nullopt when absent.
using HeaderLookup =
    std::function<std::optional<std::string>(absl::string_view name)>;

// Reads:
//   x-promptcache-skip       true|false  read and write nothing (BYPASS)
//   x-promptcache-refresh    true|false  ignore stored answers, store anew
//   x-promptcache-no-store   true|false  read, but do not store a miss
//   x-promptcache-ttl        seconds (or "90s", "2h") for a stored answer
//   x-promptcache-namespace  [A-Za-z0-9._:-]{1,128}
//   x-promptcache-semantic   on|off
//   x-promptcache-threshold  similarity in (0, 1]
// Booleans accept true/false, 1/0, yes/no, on/off. A bad value is an
// InvalidArgument naming the header and what it accepts.
absl::StatusOr<Controls> ParseControlHeaders(const HeaderLookup& header);

}  // namespace promptcache::proxy

#endif  // PROMPTCACHE_SRC_PROXY_CONTROL_HEADERS_H_
