#include "http/http_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <mutex>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace promptcache::http {
namespace {

using Json = nlohmann::json;

// Server error text quoted in a status message.
constexpr size_t kMaxQuotedError = 400;

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
  if (name == "retry-after-ms") {
    if (absl::SimpleAtod(value, &number) && number >= 0 &&
        std::isfinite(number)) {
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

// Jitter spreads the retries of clients that failed together.
absl::Duration Jittered(absl::Duration backoff) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> factor(0.5, 1.0);
  return backoff * factor(rng);
}

struct Exchange {
  HttpReply* reply;
  const BodySink* sink;
  size_t max_bytes;
  bool too_large = false;
  bool sink_stopped = false;
  bool headers_done = false;
  // A stream's idle limit, checked by OnProgress (curl's own low-speed
  // check let a silent stream run far past it), and the caller's cancel.
  const std::atomic<bool>* cancel = nullptr;
  absl::Duration idle_limit = absl::InfiniteDuration();
  absl::Time last_activity = absl::Now();
  bool idle_expired = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const size_t n = size * count;
  if (ex->idle_limit != absl::InfiniteDuration())
    ex->last_activity = absl::Now();
  HttpReply& reply = *ex->reply;
  if (ex->sink != nullptr && reply.status >= 200 && reply.status < 300) {
    if (!(*ex->sink)(absl::string_view(data, n))) {
      ex->sink_stopped = true;
      return 0;  // Aborts the exchange.
    }
    reply.streamed_bytes += n;
    return n;
  }
  if (reply.body.size() + n > ex->max_bytes) {
    ex->too_large = true;
    return 0;
  }
  reply.body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  const size_t n = size * count;
  auto* ex = static_cast<Exchange*>(user);
  if (ex->idle_limit != absl::InfiniteDuration())
    ex->last_activity = absl::Now();
  absl::string_view line(data, n);
  if (absl::StartsWith(line, "HTTP/")) {
    // A new response (after 100 Continue or a redirect): start over.
    ex->reply->headers.clear();
    const size_t space = line.find(' ');
    long status = 0;
    // An unreadable status line leaves 0, which no caller takes for success.
    if (space != absl::string_view::npos &&
        !absl::SimpleAtoi(line.substr(space + 1, 3), &status)) {
      status = 0;
    }
    ex->reply->status = status;
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return n;
  std::string name(absl::StripAsciiWhitespace(line.substr(0, colon)));
  absl::AsciiStrToLower(&name);
  ex->reply->headers.emplace_back(
      std::move(name),
      std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  return n;
}

// Called about once a second while idle, more often while data flows.
int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* ex = static_cast<Exchange*>(user);
  if (ex->cancel != nullptr && ex->cancel->load(std::memory_order_relaxed)) {
    return 1;
  }
  if (absl::Now() - ex->last_activity > ex->idle_limit) {
    ex->idle_expired = true;
    return 1;
  }
  return 0;
}

long Millis(absl::Duration d) {
  return static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

}  // namespace

std::optional<std::string> HttpReply::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

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

// Servers differ: OpenAI and vLLM send {"error":{"message":...}}, Ollama
// and TEI {"error":"..."}, some vLLM versions {"message":...}, FastAPI-based
// servers {"detail":...}.
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

absl::StatusOr<std::string> NormalizeBaseUrl(absl::string_view url,
                                             absl::string_view what) {
  absl::string_view base = absl::StripAsciiWhitespace(url);
  auto starts = [&](absl::string_view prefix) {
    return base.size() >= prefix.size() &&
           absl::EqualsIgnoreCase(base.substr(0, prefix.size()), prefix);
  };
  if (!starts("http://") && !starts("https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " must start with http:// or https://, got \"",
                     Quote(UrlForErrors(base)), "\""));
  }
  while (absl::ConsumeSuffix(&base, "/")) {
  }
  return std::string(base);
}

absl::Status Redact(const absl::Status& status,
                    const std::vector<std::string>& secrets) {
  if (status.ok()) return status;
  std::string message(status.message());
  bool changed = false;
  for (const std::string& secret : secrets) {
    if (secret.empty() || message.find(secret) == std::string::npos) continue;
    message = absl::StrReplaceAll(message, {{secret, "[redacted]"}});
    changed = true;
  }
  return changed ? absl::Status(status.code(), message) : status;
}

absl::Status CheckHeaderValue(absl::string_view value, absl::string_view what) {
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7F) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " contains control characters"));
    }
  }
  return absl::OkStatus();
}

absl::Status StatusForReply(const HttpReply& reply, absl::string_view where,
                            const std::vector<std::string>& secrets) {
  std::string body = reply.body;
  for (const std::string& secret : secrets) {
    if (!secret.empty()) {
      body = absl::StrReplaceAll(body, {{secret, "[redacted]"}});
    }
  }
  return Redact(absl::Status(CodeForHttp(reply.status),
                             absl::StrCat(where, ": HTTP ", reply.status, ": ",
                                          ServerMessage(body))),
                secrets);
}

absl::StatusOr<HttpReply> Send(const HttpRequest& request,
                               const TransportOptions& options,
                               absl::string_view where, const BodySink* sink) {
  if (absl::Status s = GlobalInit(); !s.ok()) return s;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    return absl::InternalError(absl::StrCat(where, ": curl_easy_init failed"));
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Expect:");  // No 100-continue wait.
  for (const auto& [name, value] : request.headers) {
    const std::string line = absl::StrCat(name, ": ", value);
    headers = curl_slist_append(headers, line.c_str());
  }
  HttpReply reply;
  Exchange ex{&reply, sink, options.max_response_bytes};
  char error[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // Signals are not thread-safe.
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  if (request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.method != "GET" || !request.body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   Millis(options.connect_timeout));
  if (sink == nullptr) {
    // Buffered bodies are decoded; a streamed one is relayed as sent.
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, Millis(options.timeout));
  } else {
    ex.idle_limit = options.idle_timeout;
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ex);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &ex);

  ex.cancel = request.cancel;
  if (ex.cancel != nullptr || ex.idle_limit != absl::InfiniteDuration()) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &ex);
  }
  const CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (code == CURLE_OK) return reply;
  if (ex.idle_expired) {
    absl::Status status = absl::DeadlineExceededError(absl::StrCat(
        where, ": no data for ", absl::FormatDuration(options.idle_timeout)));
    if (reply.streamed_bytes == 0) {
      status.SetPayload("promptcache.retryable", absl::Cord("1"));
    }
    return status;
  }
  if (ex.sink_stopped || code == CURLE_ABORTED_BY_CALLBACK) {
    return absl::CancelledError(
        absl::StrCat(where, ": the receiver stopped the stream"));
  }
  if (ex.too_large) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where, ": response larger than ",
                     options.max_response_bytes, " bytes"));
  }
  const std::string detail =
      error[0] != '\0' ? std::string(error) : curl_easy_strerror(code);
  absl::Status status(CodeForCurl(code), absl::StrCat(where, ": ", detail));
  // Retryable only when nothing reached the sink; record it for the caller.
  if (RetryableCurl(code) && reply.streamed_bytes == 0) {
    status.SetPayload("promptcache.retryable", absl::Cord("1"));
  }
  return status;
}

absl::StatusOr<HttpReply> SendWithRetries(const HttpRequest& request,
                                          const TransportOptions& options,
                                          absl::string_view where,
                                          const BodySink* sink) {
  // No attempt starts, and no backoff waits, past total_timeout. (Through
  // the proxy a hanging stream took 3 attempts plus backoff.)
  const absl::Time deadline = absl::Now() + options.total_timeout;
  TransportOptions attempt_options = options;
  absl::Duration backoff = options.initial_backoff;
  for (int attempt = 0;; ++attempt) {
    const absl::Duration left = deadline - absl::Now();
    attempt_options.timeout =
        std::max(absl::Milliseconds(1), std::min(options.timeout, left));
    // A stream's silence is bounded by what is left of the call too.
    attempt_options.idle_timeout =
        std::max(absl::Milliseconds(1), std::min(options.idle_timeout, left));
    absl::StatusOr<HttpReply> reply =
        Send(request, attempt_options, where, sink);
    bool retryable = false;
    std::optional<absl::Duration> server_wait;
    if (!reply.ok()) {
      retryable =
          reply.status().GetPayload("promptcache.retryable").has_value();
    } else if (RetryableHttp(reply->status) && reply->streamed_bytes == 0) {
      retryable = true;
      if (auto ms = reply->Header("retry-after-ms")) {
        server_wait = ParseRetryAfter("retry-after-ms", *ms);
      }
      if (!server_wait.has_value()) {
        if (auto s = reply->Header("retry-after")) {
          server_wait = ParseRetryAfter("retry-after", *s);
        }
      }
    }
    const absl::Duration wait =
        std::min(server_wait.value_or(Jittered(backoff)), options.max_backoff);
    // An attempt with less than a tenth of the time left is not worth it.
    const bool out_of_time =
        options.total_timeout != absl::InfiniteDuration() &&
        absl::Now() + wait + options.total_timeout / 10 >= deadline;
    if (!retryable || attempt >= options.max_retries || out_of_time) {
      if (!reply.ok()) {
        absl::Status s = reply.status();
        s.ErasePayload("promptcache.retryable");
        if (attempt > 0 || (retryable && out_of_time)) {
          s = absl::Status(
              s.code(),
              absl::StrCat(
                  s.message(), " (gave up after ", attempt + 1,
                  attempt == 0 ? " attempt" : " attempts",
                  retryable && out_of_time
                      ? absl::StrCat(": the call's timeout of ",
                                     absl::FormatDuration(options.timeout),
                                     " was reached")
                      : "",
                  ")"));
        }
        return s;
      }
      reply->attempts = attempt + 1;
      return reply;
    }
    absl::SleepFor(wait);
    backoff = std::min(backoff * 2, options.max_backoff);
  }
}

}  // namespace promptcache::http
