// What every HTTP upstream does with its UpstreamOptions: check them, find
// its key, and turn them into transport settings. Shared by HttpModelClient,
// HttpEmbedder and the proxy, which each had their own copy.
#ifndef PROMPTCACHE_SRC_HTTP_UPSTREAM_H_
#define PROMPTCACHE_SRC_HTTP_UPSTREAM_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "http/http_transport.h"
#include "promptcache/upstream_options.h"

namespace promptcache::http {

// InvalidArgument "<who>: <field> ..." for a timeout <= 0, retries < 0, a
// negative backoff or an extra header that is not a valid header line.
absl::Status CheckUpstreamOptions(const UpstreamOptions& options,
                                  absl::string_view who);

// Reads `api_key` from `api_key_env` when it is empty (and the variable is
// set), then checks that it is a valid header value (a newline would inject
// headers). The error names where the key came from, never the key.
absl::Status ResolveApiKey(UpstreamOptions* options, absl::string_view who);

// The transport settings of `options` (the caller adds its own: user agent,
// size limits, total timeout).
TransportOptions TransportFor(const UpstreamOptions& options);

}  // namespace promptcache::http

#endif  // PROMPTCACHE_SRC_HTTP_UPSTREAM_H_
