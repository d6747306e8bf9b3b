#include "promptcache/http_embedder.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "cost/token_estimate.h"
#include "http/http_transport.h"
#include "http/upstream.h"
#include "nlohmann/json.hpp"

namespace promptcache {
namespace {

using Json = nlohmann::json;

// Far above any real batch (256 x 3072 floats is ~20 MB of JSON); stops a
// broken server from filling memory.
constexpr size_t kMaxResponseBytes = size_t{512} << 20;
// Larger vectors are not real embedding models.
constexpr int kMaxDimension = 1 << 16;
constexpr char kProbeText[] = "promptcache dimension probe";

// Parses a 2xx body for `n` inputs into normalized rows. `*tokens` gets the
// charged tokens as soon as the body parses, even if validation then fails,
// because the server has already billed them.
absl::Status ParseEmbeddings(const std::string& body,
                             absl::Span<const std::string* const> texts,
                             int expected_dim, std::vector<float>* rows,
                             int* dim_out, int64_t* tokens) {
  const size_t n = texts.size();
  Json json;
  try {
    json = Json::parse(body);
  } catch (const Json::exception& e) {
    // Python servers print NaN/Infinity, which JSON does not allow; others
    // print infinity as a number too large for a double (error 406).
    const bool non_finite = e.id == 406 ||
                            body.find("NaN") != std::string::npos ||
                            body.find("Infinity") != std::string::npos;
    return absl::InternalError(absl::StrCat(
        "malformed JSON in response",
        non_finite ? " (it contains NaN, Infinity or an overflowing number: "
                     "the model produced non-finite values)"
                   : "",
        ": ", e.what(), "; body starts: ", http::Quote(body.substr(0, 120))));
  }
  if (!json.is_object()) {
    return absl::InternalError("response is not a JSON object");
  }

  int64_t charged = 0;
  auto usage = json.find("usage");
  if (usage != json.end() && usage->is_object()) {
    for (const char* key : {"prompt_tokens", "total_tokens"}) {
      auto it = usage->find(key);
      if (it != usage->end() && it->is_number_integer() &&
          it->get<int64_t>() > 0) {
        charged = it->get<int64_t>();
        break;
      }
    }
  }
  if (charged == 0) {
    for (const std::string* text : texts) {
      charged += internal::EstimateTokens(*text);
    }
  }
  *tokens = charged;

  auto data = json.find("data");
  if (data == json.end() || !data->is_array()) {
    return absl::InternalError("response has no \"data\" array");
  }
  if (data->size() != n) {
    return absl::InternalError(absl::StrCat("server returned ", data->size(),
                                            " embeddings for ", n, " inputs"));
  }
  int dim = expected_dim;
  if (dim > 0) rows->assign(n * static_cast<size_t>(dim), 0.0f);
  std::vector<bool> seen(n, false);
  for (size_t pos = 0; pos < n; ++pos) {
    const Json& item = (*data)[pos];
    if (!item.is_object()) {
      return absl::InternalError(
          absl::StrCat("data[", pos, "] is not an object"));
    }
    // Servers that omit "index" answer in input order.
    size_t index = pos;
    auto idx = item.find("index");
    if (idx != item.end()) {
      if (!idx->is_number_integer() || idx->get<int64_t>() < 0 ||
          idx->get<int64_t>() >= static_cast<int64_t>(n)) {
        return absl::InternalError(absl::StrCat(
            "data[", pos, "] has index ",
            idx->dump(-1, ' ', false, Json::error_handler_t::replace),
            ", expected an integer in [0, ", n, ")"));
      }
      index = static_cast<size_t>(idx->get<int64_t>());
    }
    if (seen[index]) {
      return absl::InternalError(
          absl::StrCat("index ", index, " appears twice in the response"));
    }
    seen[index] = true;

    auto emb = item.find("embedding");
    if (emb == item.end()) {
      return absl::InternalError(
          absl::StrCat("data[", pos, "] has no \"embedding\""));
    }
    if (emb->is_string()) {
      return absl::InternalError(
          "embedding is a string (base64?); expected an array of floats");
    }
    if (!emb->is_array()) {
      return absl::InternalError(
          absl::StrCat("embedding ", index, " is not an array"));
    }
    if (dim == 0) {
      if (emb->empty() || emb->size() > static_cast<size_t>(kMaxDimension)) {
        return absl::InternalError(absl::StrCat(
            "embedding ", index, " has an unusable size ", emb->size()));
      }
      dim = static_cast<int>(emb->size());
      rows->assign(n * static_cast<size_t>(dim), 0.0f);
    }
    if (emb->size() != static_cast<size_t>(dim)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "wrong embedding dimension: expected ", dim, ", got ", emb->size(),
          " (input ", index, "); check the model and the dimension option"));
    }
    float* row = rows->data() + index * static_cast<size_t>(dim);
    double norm2 = 0;
    for (int j = 0; j < dim; ++j) {
      const Json& v = (*emb)[static_cast<size_t>(j)];
      if (!v.is_number()) {
        return absl::InternalError(absl::StrCat("embedding ", index, " value ",
                                                j, " is not a number"));
      }
      const float f = static_cast<float>(v.get<double>());
      if (!std::isfinite(f)) {
        return absl::InternalError(absl::StrCat("embedding ", index, " value ",
                                                j, " is not finite (", f, ")"));
      }
      row[j] = f;
      norm2 += static_cast<double>(f) * f;
    }
    if (norm2 == 0 || !std::isfinite(norm2)) {
      return absl::InternalError(absl::StrCat(
          "embedding ", index, " is all zeros, so it cannot be normalized"));
    }
    const double inv = 1.0 / std::sqrt(norm2);
    for (int j = 0; j < dim; ++j) row[j] = static_cast<float>(row[j] * inv);
  }
  *dim_out = dim;
  return absl::OkStatus();
}

}  // namespace

HttpEmbedder::HttpEmbedder(HttpEmbedderOptions options)
    : options_(std::move(options)) {}

HttpEmbedder::~HttpEmbedder() = default;

absl::StatusOr<std::unique_ptr<HttpEmbedder>> HttpEmbedder::Create(
    HttpEmbedderOptions options) {
  try {
    absl::StatusOr<std::string> normalized =
        http::NormalizeBaseUrl(options.base_url, "http embedder: base_url");
    if (!normalized.ok()) return normalized.status();
    const absl::string_view base = *normalized;
    if (options.model.empty()) {
      return absl::InvalidArgumentError("http embedder: model is empty");
    }
    if (options.dimension < 0 || options.dimension > kMaxDimension) {
      return absl::InvalidArgumentError(absl::StrCat(
          "http embedder: dimension must be in [0, ", kMaxDimension,
          "] (0 = probe), got ", options.dimension));
    }
    if (options.request_dimensions && options.dimension == 0) {
      return absl::InvalidArgumentError(
          "http embedder: request_dimensions needs a dimension > 0");
    }
    if (!(options.usd_per_million_tokens >= 0) ||
        !std::isfinite(options.usd_per_million_tokens)) {
      return absl::InvalidArgumentError(
          "http embedder: usd_per_million_tokens must be finite and >= 0");
    }
    if (absl::Status s = http::CheckUpstreamOptions(options, "http embedder");
        !s.ok()) {
      return s;
    }
    if (options.max_batch < 1) {
      return absl::InvalidArgumentError(
          "http embedder: max_batch must be >= 1");
    }
    if (absl::Status s = http::ResolveApiKey(&options, "http embedder");
        !s.ok()) {
      return s;
    }

    const std::string endpoint = absl::EndsWith(base, "/v1")
                                     ? absl::StrCat(base, "/embeddings")
                                     : absl::StrCat(base, "/v1/embeddings");
    std::unique_ptr<HttpEmbedder> embedder(
        new HttpEmbedder(std::move(options)));
    embedder->endpoint_ = endpoint;
    embedder->endpoint_for_errors_ = http::UrlForErrors(endpoint);
    embedder->dimension_ = embedder->options_.dimension;
    if (embedder->dimension_ == 0) {
      const std::string probe = kProbeText;
      const std::string* batch[] = {&probe};
      std::vector<float> rows;
      int dim = 0;
      int64_t tokens = 0;
      absl::Status s = embedder->EmbedBatch(batch, 0, &rows, &dim, &tokens);
      embedder->tokens_used_.fetch_add(tokens, std::memory_order_relaxed);
      if (!s.ok()) {
        return absl::Status(
            s.code(), absl::StrCat("probing the dimension: ", s.message()));
      }
      embedder->dimension_ = dim;
    }
    embedder->name_ = absl::StrCat("http:", embedder->options_.model, "/",
                                   embedder->dimension_);
    return embedder;
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("http embedder: unexpected error: ", e.what()));
  }
}

int64_t HttpEmbedder::CostNanoDollars(int64_t tokens) const {
  // USD per 1M tokens == nano-dollars per 1e-3 token: x1000 per token.
  const long double nusd = static_cast<long double>(tokens) *
                           options_.usd_per_million_tokens * 1000.0L;
  return static_cast<int64_t>(std::llround(nusd));
}

absl::Status HttpEmbedder::Redact(const absl::Status& status) const {
  return http::Redact(status, {options_.api_key});
}

absl::Status HttpEmbedder::EmbedBatch(
    absl::Span<const std::string* const> texts, int expected_dim,
    std::vector<float>* rows, int* dim, int64_t* tokens) const {
  *tokens = 0;
  Json request = {{"model", options_.model}, {"input", Json::array()}};
  Json& input = request["input"];
  for (const std::string* text : texts) input.push_back(*text);
  if (options_.request_dimensions) request["dimensions"] = options_.dimension;
  // Invalid UTF-8 becomes U+FFFD rather than failing the whole batch.
  const std::string body =
      request.dump(-1, ' ', false, Json::error_handler_t::replace);

  const std::string where =
      absl::StrCat("http embedder: POST ", endpoint_for_errors_, " (model ",
                   options_.model, ")");
  http::HttpRequest post;
  post.url = endpoint_;
  post.body = body;
  post.headers = {{"Content-Type", "application/json"},
                  {"Accept", "application/json"}};
  if (!options_.api_key.empty()) {
    post.headers.emplace_back("Authorization",
                              absl::StrCat("Bearer ", options_.api_key));
  }
  for (const auto& header : options_.extra_headers) {
    post.headers.push_back(header);
  }
  http::TransportOptions transport = http::TransportFor(options_);
  transport.max_response_bytes = kMaxResponseBytes;
  transport.user_agent = "promptcache-http-embedder";
  absl::StatusOr<http::HttpReply> reply =
      http::SendWithRetries(post, transport, where);
  if (!reply.ok()) return Redact(reply.status());
  if (reply->status < 200 || reply->status >= 300) {
    absl::Status status =
        http::StatusForReply(*reply, where, {options_.api_key});
    if (reply->attempts > 1) {
      status = absl::Status(status.code(),
                            absl::StrCat(status.message(), " (gave up after ",
                                         reply->attempts, " attempts)"));
    }
    return Redact(status);
  }
  absl::Status parsed =
      ParseEmbeddings(reply->body, texts, expected_dim, rows, dim, tokens);
  if (parsed.ok()) return parsed;
  return Redact(
      absl::Status(parsed.code(), absl::StrCat(where, ": ", parsed.message())));
}

absl::Status HttpEmbedder::Embed(absl::Span<const std::string> texts,
                                 std::vector<float>* out) const {
  return EmbedWithUsage(texts, out, nullptr);
}

absl::Status HttpEmbedder::EmbedWithUsage(absl::Span<const std::string> texts,
                                          std::vector<float>* out,
                                          int64_t* tokens) const {
  if (tokens != nullptr) *tokens = 0;
  if (out == nullptr) {
    return absl::InvalidArgumentError("http embedder: out is null");
  }
  int64_t charged = 0;
  try {
    const size_t dim = static_cast<size_t>(dimension_);
    std::vector<float> result(texts.size() * dim, 0.0f);
    // Empty texts stay zero vectors: the API would reject them.
    std::vector<size_t> sent;
    sent.reserve(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      if (!texts[i].empty()) sent.push_back(i);
    }
    const size_t max_batch = static_cast<size_t>(options_.max_batch);
    std::vector<const std::string*> batch;
    std::vector<float> rows;
    for (size_t start = 0; start < sent.size(); start += max_batch) {
      const size_t end = std::min(sent.size(), start + max_batch);
      batch.clear();
      for (size_t k = start; k < end; ++k) batch.push_back(&texts[sent[k]]);
      int got_dim = 0;
      int64_t batch_tokens = 0;
      absl::Status s =
          EmbedBatch(batch, dimension_, &rows, &got_dim, &batch_tokens);
      charged += batch_tokens;
      tokens_used_.fetch_add(batch_tokens, std::memory_order_relaxed);
      if (!s.ok()) {
        if (tokens != nullptr) *tokens = charged;
        return s;
      }
      for (size_t k = start; k < end; ++k) {
        std::copy_n(rows.begin() + static_cast<ptrdiff_t>((k - start) * dim),
                    dim,
                    result.begin() + static_cast<ptrdiff_t>(sent[k] * dim));
      }
    }
    *out = std::move(result);
    if (tokens != nullptr) *tokens = charged;
    return absl::OkStatus();
  } catch (const std::exception& e) {
    if (tokens != nullptr) *tokens = charged;
    return absl::InternalError(
        absl::StrCat("http embedder: unexpected error: ", e.what()));
  }
}

}  // namespace promptcache
