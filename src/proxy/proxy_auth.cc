// Keys, tenants and namespaces of proxied calls, and the headers that go
// upstream.
#include <httplib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "http/http_transport.h"
#include "http/provider_format.h"
#include "http/upstream.h"
#include "proxy/proxy_impl.h"

namespace promptcache {
namespace {

using proxy::BearerToken;
using proxy::IsForwardedOnModelCalls;
using proxy::IsHopByHop;
using proxy::KeyHash;
using proxy::kJson;
using wire::Api;

}  // namespace

http::TransportOptions ProxyServer::Impl::TransportFor(
    const Upstream& up) const {
  http::TransportOptions t = http::TransportFor(up.config);
  t.idle_timeout = up.config.timeout;
  // The proxy's timeout is the client's: retries included.
  t.total_timeout = up.config.timeout;
  t.user_agent = "promptcache-proxy";
  return t;
}

std::string ProxyServer::Impl::ClientKey(const Upstream& up,
                                         const httplib::Request& req) const {
  if (&up == &anthropic_ && req.has_header("x-api-key")) {
    return req.get_header_value("x-api-key");
  }
  return BearerToken(req);
}

std::vector<std::string> ProxyServer::Impl::Secrets(
    const Upstream& up, const httplib::Request& req) const {
  return {up.key, BearerToken(req), req.get_header_value("x-api-key")};
}

absl::StatusOr<std::string> ProxyServer::Impl::TenantFor(
    const Upstream& up, const httplib::Request& req) const {
  const std::string key = ClientKey(up, req);
  if (!up.key.empty() && !options_.allow_unauthenticated_clients) {
    auto tenant = tenant_by_key_hash_.find(KeyHash(key));
    if (key.empty() || tenant == tenant_by_key_hash_.end()) {
      return absl::UnauthenticatedError(
          key.empty() ? "this proxy needs a client key (Authorization: "
                        "Bearer KEY); none was sent"
                      : "this proxy does not know the client key sent");
    }
    return absl::StrCat("tenant-", tenant->second);
  }
  if (key.empty()) return std::string("anonymous");
  return absl::StrCat("key-", KeyHash(key).substr(0, 16));
}

std::string ProxyServer::Impl::NamespaceFor(
    const std::string& tenant,
    const std::optional<std::string>& header_ns) const {
  if (options_.namespace_mode == NamespaceMode::kHeader) {
    return header_ns.value_or("default");
  }
  std::string ns = tenant;
  if (header_ns.has_value()) absl::StrAppend(&ns, "/", *header_ns);
  return ns;
}

bool ProxyServer::Impl::StatsAllowed(const httplib::Request& req,
                                     httplib::Response& res) const {
  if (!options_.protect_stats) return true;
  const std::string key = req.has_header("x-api-key")
                              ? req.get_header_value("x-api-key")
                              : BearerToken(req);
  if (!key.empty() && tenant_by_key_hash_.contains(KeyHash(key))) return true;
  SendError(Api::kOpenAiChat, 401,
            "this endpoint needs a client key (Authorization: Bearer KEY)", "",
            res);
  return false;
}

std::string ProxyServer::Impl::AuthenticationSummary() const {
  std::string out;
  for (const Upstream* up : {&openai_, &anthropic_}) {
    absl::StrAppend(&out, up->config.backend, ": ");
    if (up->key.empty()) {
      absl::StrAppend(&out,
                      "each client's own key is forwarded; tenants are told "
                      "apart by their keys\n");
    } else if (options_.allow_unauthenticated_clients) {
      absl::StrAppend(&out, "the proxy's own key (", up->key_source,
                      ") for ANY client, unauthenticated "
                      "(allow_unauthenticated_clients)\n");
    } else {
      absl::StrAppend(&out, "the proxy's own key (", up->key_source,
                      "); clients authenticate with ", client_key_count_,
                      " configured key(s) for ", tenant_count_, " tenant(s)\n");
    }
  }
  absl::StrAppend(&out, "stats endpoints: ",
                  options_.protect_stats
                      ? "need a client key"
                      : "open to anyone who reaches the port",
                  "\n");
  return out;
}

http::HeaderList ProxyServer::Impl::UpstreamHeaders(const Upstream& up,
                                                    const httplib::Request& req,
                                                    bool model_call) const {
  http::HeaderList headers;
  const bool anthropic = &up == &anthropic_;
  // A header the operator configured (extra_headers) replaces the client's.
  auto configured = [&up](absl::string_view lower) {
    for (const auto& [name, value] : up.config.extra_headers) {
      if (absl::EqualsIgnoreCase(name, lower)) return true;
    }
    return false;
  };
  for (const auto& [name, value] : req.headers) {
    const std::string lower = absl::AsciiStrToLower(name);
    if (configured(lower)) continue;
    if (lower == "authorization" || lower == "x-api-key") {
      // Only the header whose key picked the namespace (see ClientKey).
      const bool used = lower == "x-api-key"
                            ? anthropic && req.has_header("x-api-key")
                            : !(anthropic && req.has_header("x-api-key"));
      if (up.key.empty() && used) headers.emplace_back(name, value);
      continue;
    }
    if (model_call) {
      if (IsForwardedOnModelCalls(lower)) headers.emplace_back(name, value);
    } else if (!IsHopByHop(lower)) {
      headers.emplace_back(name, value);
    }
  }
  if (!up.key.empty()) {
    if (anthropic) {
      headers.emplace_back("x-api-key", up.key);
    } else {
      headers.emplace_back("Authorization", absl::StrCat("Bearer ", up.key));
    }
  }
  for (const auto& header : up.config.extra_headers) {
    headers.push_back(header);
  }
  if (model_call) {
    headers.emplace_back("Content-Type", kJson);
    if (anthropic && !req.has_header("anthropic-version") &&
        !configured("anthropic-version")) {
      headers.emplace_back("anthropic-version", "2023-06-01");
    }
  }
  return headers;
}

}  // namespace promptcache
