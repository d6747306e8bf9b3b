#include "http/upstream.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace promptcache::http {

absl::Status CheckUpstreamOptions(const UpstreamOptions& options,
                                  absl::string_view who) {
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": timeout must be > 0, got ",
                     absl::FormatDuration(options.timeout)));
  }
  if (options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": connect_timeout must be > 0, got ",
                     absl::FormatDuration(options.connect_timeout)));
  }
  if (options.max_retries < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": max_retries must be >= 0, got ", options.max_retries));
  }
  if (options.initial_backoff < absl::ZeroDuration() ||
      options.max_backoff < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": backoff durations must be >= 0"));
  }
  for (const auto& [name, value] : options.extra_headers) {
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": an extra header has no name"));
    }
    if (absl::Status s =
            CheckHeaderValue(absl::StrCat(name, value),
                             absl::StrCat(who, ": extra header ", Quote(name)));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ResolveApiKey(UpstreamOptions* options, absl::string_view who) {
  const bool from_env = options->api_key.empty();
  if (from_env && !options->api_key_env.empty()) {
    const char* key = std::getenv(options->api_key_env.c_str());
    if (key != nullptr) options->api_key = key;
  }
  return CheckHeaderValue(
      options->api_key,
      absl::StrCat(who, ": the API key (",
                   from_env ? options->api_key_env : std::string("api_key"),
                   ")"));
}

TransportOptions TransportFor(const UpstreamOptions& options) {
  TransportOptions t;
  t.timeout = options.timeout;
  t.connect_timeout = options.connect_timeout;
  t.max_retries = options.max_retries;
  t.initial_backoff = options.initial_backoff;
  t.max_backoff = options.max_backoff;
  return t;
}

}  // namespace promptcache::http
