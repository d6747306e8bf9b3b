// The demo's simulated paid upstream: answers, token counts and latencies
// derived from a hash of the request (model and prompt, not the tenant), so
// that the demo needs no API key and gives the same numbers on every run.
#ifndef PROMPTCACHE_EXAMPLES_SIMULATED_UPSTREAM_H_
#define PROMPTCACHE_EXAMPLES_SIMULATED_UPSTREAM_H_

#include "absl/status/statusor.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace promptcache::demo {

// A ModelClient: sleeps for the simulated latency times `latency_scale`.
struct SimulatedUpstream {
  double latency_scale = 0.01;
  absl::StatusOr<Response> operator()(const Request& request) const;
};

}  // namespace promptcache::demo

#endif  // PROMPTCACHE_EXAMPLES_SIMULATED_UPSTREAM_H_
