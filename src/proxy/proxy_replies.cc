// What the proxy sends back besides answers: errors in each provider's
// format, cache headers, access records; and bodies read within their bound.
#include <httplib.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "http/http_transport.h"
#include "http/provider_format.h"
#include "nlohmann/json.hpp"
#include "proxy/access_log.h"
#include "proxy/metrics.h"
#include "proxy/proxy_impl.h"

namespace promptcache {
namespace {

using Json = nlohmann::json;
using proxy::kJson;
using proxy::kUpstreamFailure;
using proxy::StatusLabel;
using proxy::ToNanoDollars;
using wire::Api;

}  // namespace

void ProxyServer::Impl::SendError(Api api, int http_status,
                                  absl::string_view message,
                                  absl::string_view param,
                                  httplib::Response& res) const {
  res.status = http_status;
  // Every error, of the proxy's making or the upstream's, says so.
  res.set_header("x-promptcache-status", "ERROR");
  res.set_content(wire::RenderErrorBody(api, http_status, message, param),
                  kJson);
}

std::string ProxyServer::Impl::WithoutProxyKeys(std::string body) const {
  for (const Upstream* up : {&openai_, &anthropic_}) {
    if (!up->key.empty() && body.find(up->key) != std::string::npos) {
      body = absl::StrReplaceAll(body, {{up->key, "[redacted]"}});
    }
  }
  return body;
}

void ProxyServer::Impl::SendFailure(Api api, const absl::Status& status,
                                    const Outcome& outcome,
                                    httplib::Response& res) const {
  // Clients can always tell an error of the proxy's making from a hit or a
  // miss; the access log keeps the whole message.
  res.set_header("x-promptcache-status", "ERROR");
  if (outcome.reply.has_value()) {
    const http::HttpReply& reply = *outcome.reply;
    const int http_status = static_cast<int>(reply.status);
    const std::string type = reply.Header("content-type").value_or("");
    const bool json = absl::StrContains(absl::AsciiStrToLower(type), "json") &&
                      Json::accept(reply.body);
    if (!json) {
      // A gateway's HTML page or plain text: SDKs parse the provider's JSON
      // error format, so the reply is described in it instead.
      SendError(api, http_status >= 400 ? http_status : 502,
                absl::StrCat("the upstream answered HTTP ", http_status,
                             " with a body that is not JSON (",
                             type.empty() ? "no content type" : type, ", ",
                             reply.body.size(), " bytes)"),
                "", res);
    } else {
      // The provider's own error as the SDK expects it, or a 2xx answer
      // promptcache could not read (relayed, not cached).
      res.status = http_status;
      res.set_content(WithoutProxyKeys(reply.body), type);
    }
    for (const char* name :
         {"retry-after", "retry-after-ms", "x-request-id", "request-id"}) {
      if (auto v = reply.Header(name)) res.set_header(name, *v);
    }
    return;
  }
  int http_status = wire::HttpStatusFor(status);
  // Also a coalesced waiter's: it got the leading call's upstream failure.
  if (outcome.called || status.GetPayload(kUpstreamFailure).has_value()) {
    // After the upstream was called, a failure is the upstream's, not the
    // client's request's (a 4xx would tell SDKs not to retry). Its message
    // names the upstream's address, which is the operator's business.
    if (http_status < 500) http_status = 502;
    SendError(api, http_status,
              absl::StrCat("the upstream call failed (",
                           absl::StatusCodeToString(status.code()),
                           "); the proxy's access log has the details"),
              "", res);
    return;
  }
  // The cache's own messages name C++ options; clients see the limit only.
  std::string message(status.message());
  for (size_t at;
       (at = message.find(" (CanonicalOptions::")) != std::string::npos;) {
    const size_t end = message.find(')', at);
    message.erase(at,
                  end == std::string::npos ? std::string::npos : end + 1 - at);
  }
  SendError(api, http_status, message, "", res);
}

void ProxyServer::Impl::SetCacheHeaders(const Response& r,
                                        httplib::Response& res) const {
  res.set_header("x-promptcache-status", StatusLabel(r));
  if (r.request_key.has_value()) {
    res.set_header("x-promptcache-request", r.request_key->ToHex());
  }
  if (r.entry_key.has_value()) {
    res.set_header("x-promptcache-entry", r.entry_key->ToHex());
  }
  if (!r.semantic_decision.empty()) {
    // It quotes words of prompts: printable ASCII only (no header
    // injection), and bounded.
    std::string value = r.semantic_decision.substr(0, 400);
    for (char& c : value) {
      if (c < 0x20 || c > 0x7e) c = '?';
    }
    res.set_header("x-promptcache-semantic-decision", value);
  }
  if (r.cache_status == CacheStatus::kSemanticHit ||
      r.cache_status == CacheStatus::kExactHit) {
    res.set_header("x-promptcache-similarity",
                   absl::StrFormat("%.4f", r.similarity));
  }
  if (r.priced) {
    res.set_header("x-promptcache-saved-usd",
                   absl::StrFormat("%.9f", r.dollars_saved));
    res.set_header("x-promptcache-spent-usd",
                   absl::StrFormat("%.9f", r.dollars_spent));
  }
}

void ProxyServer::Impl::Finish(proxy::AccessRecord& record, absl::Time start,
                               const Response* answer, bool upstream_error) {
  record.latency = absl::Now() - start;
  proxy::Observation o;
  o.api = record.api.empty() ? "passthrough" : record.api;
  o.status = record.cache_status;
  o.backend = record.backend;
  o.model = record.model;
  o.latency = record.latency;
  o.upstream_error = upstream_error;
  if (answer != nullptr) {
    o.saved_nusd = ToNanoDollars(answer->dollars_saved);
    o.spent_nusd = ToNanoDollars(answer->dollars_spent);
    record.dollars_saved = answer->dollars_saved;
    record.dollars_spent = answer->dollars_spent;
    record.similarity = answer->cache_status == CacheStatus::kSemanticHit
                            ? answer->similarity
                            : 0;
    if (answer->entry_key) record.entry = answer->entry_key->ToHex();
  }
  metrics_.Record(o);
  if (access_log_ != nullptr) access_log_->Write(record);
}

httplib::Server::HandlerWithContentReader ProxyServer::Impl::WithBoundedBody(
    BodyHandler handler) {
  return [this, handler = std::move(handler)](
             const httplib::Request& req, httplib::Response& res,
             const httplib::ContentReader& content) {
    if (req.is_multipart_form_data()) {
      // httplib 0.11 cannot hand over a multipart body's raw bytes (its
      // plain reader throws on one): read and drop it, keeping the
      // connection in step, and refuse it.
      content([](const httplib::MultipartFormData&) { return true; },
              [](const char*, size_t) { return true; });
      SendError(Api::kOpenAiChat, 415,
                "multipart bodies (file uploads) are not relayed by this "
                "proxy; send them to the provider directly",
                "", res);
      return;
    }
    std::string body;
    bool too_large = false;
    // Past the limit the rest is read and dropped, as httplib does for a
    // Content-Length body: the connection stays in step for the next
    // request, and memory stays bounded. The raw bytes also for multipart
    // bodies (a file upload is relayed as it came).
    const bool read = content([&](const char* data, size_t size) {
      if (too_large || size > options_.max_body_bytes - body.size()) {
        too_large = true;
        std::string().swap(body);
        return true;
      }
      body.append(data, size);
      return true;
    });
    if (too_large || res.status == 413) {
      res.status = 413;
      return;
    }
    if (!read) {
      res.status = 400;
      return;
    }
    httplib::Request with_body = req;
    with_body.body = std::move(body);
    handler(with_body, res);
  };
}

}  // namespace promptcache
