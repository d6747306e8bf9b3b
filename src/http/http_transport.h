// libcurl HTTP exchanges shared by the HTTP embedder, the model clients and
// the proxy: one request, or one request with retries (backoff with jitter,
// Retry-After honored), optionally streaming the body to a sink.
#ifndef PROMPTCACHE_SRC_HTTP_HTTP_TRANSPORT_H_
#define PROMPTCACHE_SRC_HTTP_HTTP_TRANSPORT_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace promptcache::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct TransportOptions {
  // Whole exchange limit of one attempt for a buffered answer. A streamed
  // answer is limited by idle_timeout instead, since generations may run
  // for minutes.
  absl::Duration timeout = absl::Seconds(600);
  // No attempt starts (and no backoff waits) this long after the call
  // began; an attempt gets at most what is left of it.
  absl::Duration total_timeout = absl::InfiniteDuration();
  absl::Duration connect_timeout = absl::Seconds(10);
  // A streamed answer that sends no byte for this long is aborted.
  absl::Duration idle_timeout = absl::Seconds(120);
  // Retries after the first attempt (transport errors, 408, 429, 5xx).
  int max_retries = 2;
  absl::Duration initial_backoff = absl::Milliseconds(500);
  // Cap on one wait, including a server's Retry-After.
  absl::Duration max_backoff = absl::Seconds(20);
  // Larger buffered bodies fail the call (ResourceExhausted).
  size_t max_response_bytes = size_t{64} << 20;
  std::string user_agent = "promptcache";
};

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  HeaderList headers;
  std::string body;
  // When set and it becomes true, the exchange is aborted within ~100 ms
  // (Cancelled), even while the server sends nothing.
  const std::atomic<bool>* cancel = nullptr;
};

struct HttpReply {
  long status = 0;
  HeaderList headers;  // lower-case names, in arrival order
  // The body, unless it was delivered to a sink (2xx streamed answers).
  std::string body;
  // Bytes given to the sink.
  size_t streamed_bytes = 0;
  // Attempts SendWithRetries made (1 without retries).
  int attempts = 1;

  // First header named `name` (lower case), or nullopt.
  std::optional<std::string> Header(absl::string_view name) const;
};

// Receives a 2xx body as it arrives. Return false to abort the exchange
// (the call then fails with Cancelled).
using BodySink = std::function<bool(absl::string_view bytes)>;

// One exchange. Transport failures are errors naming `where` (never a
// secret: callers pass a URL without credentials); HTTP error statuses are
// returned as replies. With a sink, a 2xx body is streamed to it (and only
// idle_timeout applies); other bodies are buffered.
absl::StatusOr<HttpReply> Send(const HttpRequest& request,
                               const TransportOptions& options,
                               absl::string_view where,
                               const BodySink* sink = nullptr);

// Send with retries on transport errors and 408/429/5xx, exponential
// backoff with jitter, Retry-After / retry-after-ms honored (capped at
// max_backoff). Never retries once bytes were given to the sink. Returns
// the last reply (possibly an HTTP error) or the last transport error,
// noting how many attempts were made.
absl::StatusOr<HttpReply> SendWithRetries(const HttpRequest& request,
                                          const TransportOptions& options,
                                          absl::string_view where,
                                          const BodySink* sink = nullptr);

// The status for a non-2xx reply: code from the HTTP status (400
// InvalidArgument, 401 Unauthenticated, 403 PermissionDenied, 404 NotFound,
// 408 DeadlineExceeded, 429 ResourceExhausted, 5xx Unavailable) and a
// message "<where>: HTTP <status>: <server's own message>". Each non-empty
// secret is replaced by "[redacted]" in the body before it is quoted (the
// quote is capped, and a key cut by the cap would escape a later
// redaction).
absl::Status StatusForReply(const HttpReply& reply, absl::string_view where,
                            const std::vector<std::string>& secrets = {});

// The message in an error body ({"error":{"message"}}, {"error":"..."},
// {"message"}, {"detail"}, or the text itself), quoted safely.
std::string ServerMessage(const std::string& body);

// `text` with control characters blanked and length capped.
std::string Quote(absl::string_view text);

// The URL without userinfo, query or fragment: safe to put in messages.
std::string UrlForErrors(absl::string_view url);

// Checks that `url` is http(s) and returns it without trailing '/'.
absl::StatusOr<std::string> NormalizeBaseUrl(absl::string_view url,
                                             absl::string_view what);

// `status` with every occurrence of each non-empty secret replaced by
// "[redacted]" (servers may echo keys in errors).
absl::Status Redact(const absl::Status& status,
                    const std::vector<std::string>& secrets);

// InvalidArgument when a header value would inject headers (control
// characters). `what` names the value without quoting it.
absl::Status CheckHeaderValue(absl::string_view value, absl::string_view what);

}  // namespace promptcache::http

#endif  // PROMPTCACHE_SRC_HTTP_HTTP_TRANSPORT_H_
