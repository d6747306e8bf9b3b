// HttpEmbedder: an Embedder backed by an OpenAI-compatible embeddings API.
//
// Speaks `POST {base_url}/v1/embeddings`, which OpenAI, Ollama, vLLM, the
// llama.cpp server and Hugging Face TEI all serve:
//   request   {"model": "...", "input": ["text", ...], "dimensions": N}
//             ("dimensions" only when request_dimensions is set)
//   response  {"data": [{"index": i, "embedding": [...]}, ...],
//              "usage": {"prompt_tokens": N, "total_tokens": N}}
//
// Behaviour:
//  - Texts are sent in batches of at most max_batch; results are put back
//    in input order by each item's "index".
//  - Connection errors, timeouts, HTTP 408, 429 and 5xx are retried up to
//    max_retries times with exponential backoff and jitter; a Retry-After
//    (or retry-after-ms) header replaces the backoff, capped at max_backoff.
//    Other 4xx answers are not retried.
//  - Every vector is checked (dimension, count, finite values, not all
//    zeros) and L2-normalized. An empty text is not sent (the API rejects
//    it) and embeds to the zero vector, which has similarity 0 with
//    everything, as with Model2VecEmbedder.
//  - Errors are absl::Status values naming the endpoint, the HTTP status and
//    the server's own error message. The API key is never logged and never
//    appears in an error message, even when the server echoes it.
//  - Thread-safe: each call uses its own libcurl handle.
#ifndef PROMPTCACHE_HTTP_EMBEDDER_H_
#define PROMPTCACHE_HTTP_EMBEDDER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "promptcache/embedder.h"
#include "promptcache/export.h"
#include "promptcache/upstream_options.h"

namespace promptcache {

// The upstream (UpstreamOptions: base_url such as "https://api.openai.com"
// or "http://127.0.0.1:11434", to which "/v1/embeddings" is appended; the
// key, sent as "Authorization: Bearer <key>"; timeouts; retries of each
// batch), with shorter defaults than a model call's: api_key_env
// OPENAI_API_KEY, timeout and connect_timeout 10 s, 3 retries, backoff
// from 200 ms up to 10 s. (Before UpstreamOptions, connecting was bounded
// by `timeout` alone; set connect_timeout too when raising timeout above
// 10 s for a server that is slow to accept.)
struct HttpEmbedderOptions : UpstreamOptions {
  HttpEmbedderOptions() {
    api_key_env = "OPENAI_API_KEY";
    timeout = absl::Seconds(10);
    max_retries = 3;
    initial_backoff = absl::Milliseconds(200);
    max_backoff = absl::Seconds(10);
  }
  // Model name sent to the server, e.g. "text-embedding-3-small".
  std::string model;

  // Length of every vector. 0: learn it from one probe request in Create()
  // (that request's tokens count in tokens_used()).
  int dimension = 0;
  // Also send "dimensions": dimension, for models that can shorten their
  // vectors (OpenAI text-embedding-3-*). Requires dimension > 0. Off by
  // default because other models and servers reject the field.
  bool request_dimensions = false;

  // Price of embedding, USD per million input tokens; charged to the ledger
  // as the cost of caching. 0 for local servers.
  double usd_per_million_tokens = 0;

  // Texts per request.
  int max_batch = 256;
};

class PROMPTCACHE_EXPORT HttpEmbedder : public Embedder {
 public:
  // Checks the options (InvalidArgument naming the field), reads the API
  // key, and when options.dimension is 0 sends one probe request to learn
  // the dimension (returning that request's error if it fails).
  static absl::StatusOr<std::unique_ptr<HttpEmbedder>> Create(
      HttpEmbedderOptions options);

  ~HttpEmbedder() override;

  // "http:<model>/<dimension>", e.g. "http:text-embedding-3-small/1536".
  std::string name() const override { return name_; }
  int dimension() const override { return dimension_; }
  absl::Status Embed(absl::Span<const std::string> texts,
                     std::vector<float>* out) const override;

  // Embed, also returning the input tokens this call was charged for
  // (`*tokens`, may be null): the server's usage.prompt_tokens, or an
  // estimate of one token per 4 bytes when the server reports no usage.
  // Set also when Embed fails after some batches were answered.
  absl::Status EmbedWithUsage(absl::Span<const std::string> texts,
                              std::vector<float>* out, int64_t* tokens) const;

  // usd_per_million_tokens applied to `tokens`, rounded to nano-dollars.
  int64_t CostNanoDollars(int64_t tokens) const override;

  // Running total of input tokens charged by all calls so far (same rule as
  // EmbedWithUsage), including the dimension probe.
  int64_t tokens_used() const {
    return tokens_used_.load(std::memory_order_relaxed);
  }

  // The endpoint requests go to, e.g. "http://127.0.0.1:8080/v1/embeddings".
  const std::string& endpoint() const { return endpoint_; }

 private:
  explicit HttpEmbedder(HttpEmbedderOptions options);
  // Embeds one batch of non-empty texts, with retries, into `rows`
  // (normalized, texts.size() x dimension). With expected_dim 0 the
  // dimension is taken from the response and returned in `*dim`.
  absl::Status EmbedBatch(absl::Span<const std::string* const> texts,
                          int expected_dim, std::vector<float>* rows, int* dim,
                          int64_t* tokens) const;
  // Removes the API key from a status message (servers may echo it).
  absl::Status Redact(const absl::Status& status) const;

  HttpEmbedderOptions options_;
  std::string endpoint_;
  std::string endpoint_for_errors_;  // Without userinfo or query.
  std::string name_;
  int dimension_ = 0;
  mutable std::atomic<int64_t> tokens_used_{0};
};

}  // namespace promptcache

#endif  // PROMPTCACHE_HTTP_EMBEDDER_H_
