// Calls the proxy does not cache, forwarded to the upstream as they are.
#include <httplib.h>

#include <algorithm>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "http/http_transport.h"
#include "http/provider_format.h"
#include "http/upstream.h"
#include "proxy/access_log.h"
#include "proxy/proxy_impl.h"

namespace promptcache {
namespace {

using proxy::IsHopByHop;
using wire::Api;

}  // namespace

void ProxyServer::Impl::HandlePassthrough(const Upstream& up,
                                          const httplib::Request& req,
                                          httplib::Response& res,
                                          const char* cache_label) {
  const absl::Time start = absl::Now();
  metrics_.RequestStarted();
  absl::Cleanup done = [this] { metrics_.RequestFinished(); };
  proxy::AccessRecord record;
  record.time = absl::Now();
  record.method = req.method;
  record.path = req.path;
  record.cache_status = cache_label;
  const Api api =
      &up == &anthropic_ ? Api::kAnthropicMessages : Api::kOpenAiChat;
  auto refuse = [&](int http_status, absl::string_view message) {
    SendError(api, http_status, message, "", res);
    record.cache_status = "ERROR";
    record.http_status = http_status;
    Finish(record, start, nullptr, false);
  };
  if (absl::StatusOr<std::string> tenant = TenantFor(up, req); !tenant.ok()) {
    refuse(401, tenant.status().message());
    return;
  }
  // With the proxy's own key, a client could otherwise delete files or start
  // batches on the operator's account. (A model call it cannot cache, "n":
  // 2 say, is still a model call.)
  if (!up.key.empty() && req.method != "GET" &&
      absl::string_view(cache_label) == "PASSTHROUGH") {
    refuse(403, absl::StrCat("the proxy forwards only GET requests to ",
                             http::Quote(req.path),
                             " when it uses its own API key"));
    return;
  }
  http::HttpRequest forward;
  forward.method = req.method;
  forward.url =
      absl::StrCat(up.base, req.target.empty() ? req.path : req.target);
  forward.headers = UpstreamHeaders(up, req, /*model_call=*/false);
  forward.body = req.body;
  http::TransportOptions transport = TransportFor(up);
  transport.max_retries = 0;  // Not ours to repeat: it may not be idempotent.
  const std::string where =
      absl::StrCat("upstream ", up.config.backend, ": ", req.method, " ",
                   http::UrlForErrors(forward.url));
  absl::StatusOr<http::HttpReply> reply = http::Send(forward, transport, where);
  if (!reply.ok()) {
    const absl::Status status = http::Redact(reply.status(), Secrets(up, req));
    // Its message names the upstream's address: the access log keeps it.
    SendError(&up == &anthropic_ ? Api::kAnthropicMessages : Api::kOpenAiChat,
              std::max(502, wire::HttpStatusFor(status)),
              absl::StrCat("the upstream call failed (",
                           absl::StatusCodeToString(status.code()),
                           "); the proxy's access log has the details"),
              "", res);
    record.cache_status = "ERROR_UPSTREAM";
    record.error = std::string(status.message());
  } else {
    res.status = static_cast<int>(reply->status);
    std::string type = "application/octet-stream";
    for (const auto& [name, value] : reply->headers) {
      if (name == "content-type") {
        type = value;
      } else if (!IsHopByHop(name) && name != "set-cookie") {
        res.set_header(name, value);
      }
    }
    res.set_header("x-promptcache-status", cache_label);
    res.set_content(WithoutProxyKeys(std::move(reply->body)), type);
  }
  record.http_status = res.status;
  record.response_bytes = res.body.size();
  Finish(record, start, nullptr, !reply.ok());
}

}  // namespace promptcache
