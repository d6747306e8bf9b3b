// How to reach one HTTP upstream, and how patiently: the options that
// HttpModelClientOptions, HttpEmbedderOptions and ProxyUpstream share.
#ifndef PROMPTCACHE_UPSTREAM_OPTIONS_H_
#define PROMPTCACHE_UPSTREAM_OPTIONS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace promptcache {

struct UpstreamOptions {
  // Server root, e.g. "https://api.openai.com" or "http://127.0.0.1:8000".
  // A trailing "/v1" (as SDKs spell base URLs) is accepted.
  std::string base_url;
  // The key sent upstream. When empty it is read from the environment
  // variable `api_key_env` when the client is created; when both are empty
  // no key is sent (local servers; the proxy then forwards each client's
  // own key). Never quoted in errors, only where it came from.
  std::string api_key;
  std::string api_key_env;
  // Further headers for every call (e.g. OpenAI-Organization).
  std::vector<std::pair<std::string, std::string>> extra_headers;
  // Limit for one attempt (the proxy: for the whole call, retries
  // included, and the longest silence inside a stream). Must be > 0.
  absl::Duration timeout = absl::Seconds(600);
  absl::Duration connect_timeout = absl::Seconds(10);
  // Retries after the first attempt (connection errors, 408, 429, 5xx),
  // with exponential backoff and jitter from `initial_backoff`, each wait
  // capped at `max_backoff` (a server's Retry-After included).
  int max_retries = 2;
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(20);
};

}  // namespace promptcache

#endif  // PROMPTCACHE_UPSTREAM_OPTIONS_H_
