// HttpModelClient: a ModelClient that calls a provider's HTTP API.
//
//   auto openai = promptcache::HttpModelClient::Create(
//       {.api = promptcache::ProviderApi::kOpenAiChat,
//        .base_url = "https://api.openai.com"});
//   promptcache::CachedClient client(*cache, *openai);
//
// Speaks OpenAI Chat Completions (POST {base}/v1/chat/completions), OpenAI
// legacy Completions (POST {base}/v1/completions) and Anthropic Messages
// (POST {base}/v1/messages). Any OpenAI-compatible server (vLLM, Ollama,
// llama.cpp, Together, Groq, ...) works by its base URL.
//
// Behaviour:
//  - The API key comes from the options or the environment; it is sent only
//    in the Authorization (OpenAI) or x-api-key (Anthropic) header, is never
//    part of a cache key, never stored, and never appears in an error, even
//    when the server echoes it.
//  - Connection errors, timeouts, HTTP 408, 429 and 5xx are retried with
//    exponential backoff and jitter; Retry-After / retry-after-ms replace
//    the backoff (capped at max_backoff). Other 4xx are not retried.
//  - Errors are absl::Status values naming the endpoint, the HTTP status and
//    the provider's own message: 400 InvalidArgument, 401 Unauthenticated,
//    403 PermissionDenied, 404 NotFound (e.g. unknown model), 429
//    ResourceExhausted, 5xx Unavailable, timeouts DeadlineExceeded.
//  - Copyable and thread-safe: each call uses its own connection.
#ifndef PROMPTCACHE_HTTP_MODEL_CLIENT_H_
#define PROMPTCACHE_HTTP_MODEL_CLIENT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "promptcache/export.h"
#include "promptcache/provider_api.h"
#include "promptcache/request.h"
#include "promptcache/response.h"
#include "promptcache/upstream_options.h"

namespace promptcache {

// The upstream (UpstreamOptions: base_url such as "https://api.openai.com",
// "https://api.anthropic.com" or "http://127.0.0.1:8000", key, timeouts of
// one attempt, as LLM answers can take minutes, retries), and the API.
// An empty api_key_env defaults to OPENAI_API_KEY or ANTHROPIC_API_KEY by
// `api`.
struct HttpModelClientOptions : UpstreamOptions {
  ProviderApi api = ProviderApi::kOpenAiChat;
  // Anthropic's required API version header.
  std::string anthropic_version = "2023-06-01";
  // Anthropic requires max_tokens; sent when a Request has none.
  int64_t default_max_tokens = 4096;
};

class PROMPTCACHE_EXPORT HttpModelClient {
 public:
  // Checks the options (InvalidArgument naming the field) and reads the
  // key. Sends nothing.
  static absl::StatusOr<HttpModelClient> Create(HttpModelClientOptions options);

  // One model call (with retries). The Request's namespace and backend are
  // not sent. Returns the parsed answer with the provider's usage.
  absl::StatusOr<Response> Complete(const Request& request) const;
  // So that an HttpModelClient is a ModelClient.
  absl::StatusOr<Response> operator()(const Request& request) const {
    return Complete(request);
  }

  // The endpoint calls go to, e.g. "https://api.openai.com/v1/messages".
  const std::string& endpoint() const { return endpoint_; }
  const HttpModelClientOptions& options() const { return options_; }

 private:
  HttpModelClientOptions options_;
  std::string endpoint_;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_HTTP_MODEL_CLIENT_H_
