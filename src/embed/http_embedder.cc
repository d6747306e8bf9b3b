#include "promptcache/http_embedder.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
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
#include "nlohmann/json.hpp"

namespace promptcache {
namespace {

using Json = nlohmann::json;

// Far above any real batch (256 x 3072 floats is ~20 MB of JSON); stops a
// broken server from filling memory.
constexpr size_t kMaxResponseBytes = size_t{512} << 20;
// Server error text quoted in a status message.
constexpr size_t kMaxQuotedError = 400;
// Larger vectors are not real embedding models.
constexpr int kMaxDimension = 1 << 16;
constexpr char kProbeText[] = "promptcache dimension probe";

absl::Status GlobalInit() {
  static std::once_flag once;
  static CURLcode code = CURLE_OK;
  std::call_once(once, [] { code = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (code != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("curl_global_init failed: ", curl_easy_strerror(code)));
  }
  return absl::OkStatus();
}

bool StartsWithNoCase(absl::string_view text, absl::string_view prefix) {
  return text.size() >= prefix.size() &&
         absl::EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

// The URL without userinfo, query or fragment: safe to put in messages.
std::string UrlForErrors(absl::string_view url) {
  url = url.substr(0, std::min(url.find('?'), url.find('#')));
  const size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return std::string(url);
  const size_t host_start = scheme_end + 3;
  const size_t path_start = std::min(url.find('/', host_start), url.size());
  const size_t at = url.substr(0, path_start).rfind('@');
  if (at == absl::string_view::npos || at < host_start) return std::string(url);
  return absl::StrCat(url.substr(0, host_start), url.substr(at + 1));
}

// Quotable server text: control characters blanked, length capped without
// splitting a UTF-8 sequence.
std::string Quote(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  bool cut = false;
  if (text.size() > kMaxQuotedError) {
    size_t end = kMaxQuotedError;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
      --end;
    }
    text = text.substr(0, end);
    cut = true;
  }
  std::string out(text);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) c = ' ';
  }
  if (cut) out += "...";
  return out;
}

// The message in an error body. Servers differ: OpenAI and vLLM send
// {"error":{"message":...}}, Ollama and TEI {"error":"..."}, some vLLM
// versions {"message":...}, FastAPI-based servers {"detail":...}.
std::string ServerMessage(const std::string& body) {
  const Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object()) {
    auto it = json.find("error");
    if (it != json.end()) {
      if (it->is_string()) return Quote(it->get_ref<const std::string&>());
      if (it->is_object()) {
        auto msg = it->find("message");
        if (msg != it->end() && msg->is_string()) {
          return Quote(msg->get_ref<const std::string&>());
        }
      }
    }
    for (const char* key : {"message", "detail"}) {
      it = json.find(key);
      if (it == json.end()) continue;
      if (it->is_string()) return Quote(it->get_ref<const std::string&>());
      if (!it->is_null()) {
        return Quote(it->dump(-1, ' ', false, Json::error_handler_t::replace));
      }
    }
  }
  if (body.empty()) return "(empty body)";
  return Quote(body);
}

bool RetryableHttp(long status) {
  return status == 408 || status == 429 || status >= 500;
}

absl::StatusCode CodeForHttp(long status) {
  switch (status) {
    case 400:
    case 413:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
      return absl::StatusCode::kDeadlineExceeded;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      break;
  }
  if (status >= 500) return absl::StatusCode::kUnavailable;
  if (status >= 300 && status < 400) {
    return absl::StatusCode::kFailedPrecondition;  // Redirects not followed.
  }
  return absl::StatusCode::kUnknown;
}

bool RetryableCurl(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

absl::StatusCode CodeForCurl(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::StatusCode::kInvalidArgument;
    case CURLE_WRITE_ERROR:
      return absl::StatusCode::kResourceExhausted;  // Our size cap.
    case CURLE_OUT_OF_MEMORY:
      return absl::StatusCode::kResourceExhausted;
    default:
      return absl::StatusCode::kUnavailable;
  }
}

// Retry-After is seconds or an HTTP date; retry-after-ms (OpenAI) is ms.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view name,
                                              absl::string_view value) {
  double number = 0;
  if (absl::EqualsIgnoreCase(name, "retry-after-ms")) {
    if (absl::SimpleAtod(value, &number) && number >= 0) {
      return absl::Milliseconds(number);
    }
    return std::nullopt;
  }
  if (absl::SimpleAtod(value, &number)) {
    if (number >= 0 && std::isfinite(number)) return absl::Seconds(number);
    return std::nullopt;
  }
  const std::string date(value);
  const time_t when = curl_getdate(date.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  return std::max(absl::ZeroDuration(), absl::FromTimeT(when) - absl::Now());
}

}  // namespace

struct HttpEmbedder::Reply {
  CURLcode curl = CURLE_OK;
  std::string curl_error;
  long http_status = 0;
  std::string body;
  bool too_large = false;
  std::optional<absl::Duration> retry_after;
  std::optional<absl::Duration> retry_after_ms;
};

namespace {

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
  auto* reply = static_cast<std::string*>(user);
  const size_t n = size * count;
  if (reply->size() + n > kMaxResponseBytes) return 0;  // Aborts the call.
  reply->append(data, n);
  return n;
}

struct HeaderSink {
  std::optional<absl::Duration>* retry_after;
  std::optional<absl::Duration>* retry_after_ms;
};

size_t ReadHeader(char* data, size_t size, size_t count, void* user) {
  const size_t n = size * count;
  auto* sink = static_cast<HeaderSink*>(user);
  absl::string_view line(data, n);
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return n;
  const absl::string_view name =
      absl::StripAsciiWhitespace(line.substr(0, colon));
  const absl::string_view value =
      absl::StripAsciiWhitespace(line.substr(colon + 1));
  if (absl::EqualsIgnoreCase(name, "retry-after")) {
    *sink->retry_after = ParseRetryAfter(name, value);
  } else if (absl::EqualsIgnoreCase(name, "retry-after-ms")) {
    *sink->retry_after_ms = ParseRetryAfter(name, value);
  }
  return n;
}

// Jitter spreads the retries of clients that failed together.
absl::Duration Jittered(absl::Duration backoff) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> factor(0.5, 1.0);
  return backoff * factor(rng);
}

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
        ": ", e.what(), "; body starts: ", Quote(body.substr(0, 120))));
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
    absl::string_view base = absl::StripAsciiWhitespace(options.base_url);
    if (!StartsWithNoCase(base, "http://") &&
        !StartsWithNoCase(base, "https://")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "http embedder: base_url must start with http:// or https://, got \"",
          Quote(UrlForErrors(base)), "\""));
    }
    while (absl::ConsumeSuffix(&base, "/")) {
    }
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
    if (options.timeout <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("http embedder: timeout must be > 0");
    }
    if (options.max_retries < 0) {
      return absl::InvalidArgumentError(
          "http embedder: max_retries must be >= 0");
    }
    if (options.initial_backoff < absl::ZeroDuration() ||
        options.max_backoff < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          "http embedder: backoff durations must be >= 0");
    }
    if (options.max_batch < 1) {
      return absl::InvalidArgumentError(
          "http embedder: max_batch must be >= 1");
    }
    if (options.api_key.empty() && !options.api_key_env.empty()) {
      const char* key = std::getenv(options.api_key_env.c_str());
      if (key != nullptr) options.api_key = key;
    }
    // A newline in the key would inject headers; the key itself is never
    // quoted, only where it came from.
    for (char c : options.api_key) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7F) {
        return absl::InvalidArgumentError(absl::StrCat(
            "http embedder: the API key (",
            options.api_key_env.empty() ? std::string("option api_key")
                                        : options.api_key_env,
            ") contains control characters"));
      }
    }
    if (absl::Status s = GlobalInit(); !s.ok()) return s;

    const std::string endpoint = absl::EndsWith(base, "/v1")
                                     ? absl::StrCat(base, "/embeddings")
                                     : absl::StrCat(base, "/v1/embeddings");
    std::unique_ptr<HttpEmbedder> embedder(
        new HttpEmbedder(std::move(options)));
    embedder->endpoint_ = endpoint;
    embedder->endpoint_for_errors_ = UrlForErrors(endpoint);
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
  const std::string& key = options_.api_key;
  if (status.ok() || key.empty() ||
      status.message().find(key) == absl::string_view::npos) {
    return status;
  }
  return absl::Status(
      status.code(),
      absl::StrReplaceAll(status.message(), {{key, "[redacted]"}}));
}

void HttpEmbedder::PostOnce(const std::string& body, Reply* reply) const {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    reply->curl = CURLE_FAILED_INIT;
    reply->curl_error = "curl_easy_init failed";
    return;
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:");  // No 100-continue wait.
  if (!options_.api_key.empty()) {
    const std::string auth =
        absl::StrCat("Authorization: Bearer ", options_.api_key);
    headers = curl_slist_append(headers, auth.c_str());
  }
  char error[CURL_ERROR_SIZE] = {0};
  HeaderSink sink{&reply->retry_after, &reply->retry_after_ms};
  const long timeout_ms = static_cast<long>(
      std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.timeout)));

  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // Signals are not thread-safe.
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_URL, endpoint_.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "promptcache-http-embedder");
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply->body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ReadHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);

  reply->curl = curl_easy_perform(curl);
  if (reply->curl == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->http_status);
  } else {
    reply->too_large = reply->curl == CURLE_WRITE_ERROR;
    reply->curl_error = error[0] != '\0'
                            ? std::string(error)
                            : std::string(curl_easy_strerror(reply->curl));
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
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
  absl::Duration backoff = options_.initial_backoff;
  for (int attempt = 0;; ++attempt) {
    Reply reply;
    PostOnce(body, &reply);
    bool retryable = false;
    absl::Status status;
    if (reply.curl != CURLE_OK) {
      retryable = RetryableCurl(reply.curl);
      status = absl::Status(CodeForCurl(reply.curl),
                            reply.too_large
                                ? absl::StrCat(where, ": response larger than ",
                                               kMaxResponseBytes, " bytes")
                                : absl::StrCat(where, ": ", reply.curl_error));
    } else if (reply.http_status < 200 || reply.http_status >= 300) {
      retryable = RetryableHttp(reply.http_status);
      status = absl::Status(CodeForHttp(reply.http_status),
                            absl::StrCat(where, ": HTTP ", reply.http_status,
                                         ": ", ServerMessage(reply.body)));
    } else {
      absl::Status parsed =
          ParseEmbeddings(reply.body, texts, expected_dim, rows, dim, tokens);
      if (parsed.ok()) return parsed;
      return Redact(absl::Status(parsed.code(),
                                 absl::StrCat(where, ": ", parsed.message())));
    }
    if (!retryable || attempt >= options_.max_retries) {
      if (attempt > 0) {
        status = absl::Status(status.code(),
                              absl::StrCat(status.message(), " (gave up after ",
                                           attempt + 1, " attempts)"));
      }
      return Redact(status);
    }
    absl::Duration wait = Jittered(backoff);
    if (reply.retry_after_ms.has_value()) {
      wait = *reply.retry_after_ms;
    } else if (reply.retry_after.has_value()) {
      wait = *reply.retry_after;
    }
    absl::SleepFor(std::min(wait, options_.max_backoff));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
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
