// ProxyServer::Impl, shared by the proxy's files: proxy_server.cc (set-up,
// routes, start and shutdown), proxy_auth.cc (keys, tenants, upstream
// headers), proxy_replies.cc (errors, cache headers, access records, bounded
// bodies), model_call.cc (a model call: cache, upstream, stream relay),
// passthrough.cc (everything else, forwarded) and proxy_helpers.cc.
// Internal to the proxy.
#ifndef PROMPTCACHE_PROXY_PROXY_IMPL_H_
#define PROMPTCACHE_PROXY_PROXY_IMPL_H_

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "http/http_transport.h"
#include "http/provider_format.h"
#include "promptcache/cached_client.h"
#include "promptcache/proxy_server.h"
#include "proxy/access_log.h"
#include "proxy/metrics.h"
#include "proxy/stream_relay.h"

namespace promptcache {
namespace proxy {

inline constexpr char kJson[] = "application/json";
inline constexpr char kEventStream[] = "text/event-stream";
// The payload that marks a status as the upstream's failure.
inline constexpr char kUpstreamFailure[] = "promptcache.upstream_failure";

// Marks a status as the upstream's failure, which clients see without its
// message (it names the upstream's address); coalesced waiters get the
// same status, mark included.
absl::Status UpstreamFailure(absl::Status status);
// Tenant names become namespace prefixes: the header's characters only, so
// that "acme" + header "prod" can never equal tenant "acme/prod".
bool IsTenantName(absl::string_view name);
std::string BearerToken(const httplib::Request& req);
// A one-way hash: keys are told apart (and looked up) without keeping them.
std::string KeyHash(absl::string_view key);
bool IsHopByHop(absl::string_view lower_name);
// Client headers that change how the provider answers and are forwarded on
// cached calls (everything else is ours or transport).
bool IsForwardedOnModelCalls(absl::string_view lower_name);
int64_t ToNanoDollars(double dollars);
// The response id's unique part: the request's key (24 hex digits), the
// same for every answer to the same request.
std::string ResponseIdOf(const Response& r);
// The status a response header reports for a served call.
std::string StatusLabel(const Response& r);
bool IsHit(const Response& r);
// The provider headers that can change an answer, as a reserved
// "pc_headers" member of the request's extra parameters.
absl::Status AddHeadersToKey(const httplib::Request& req, Request* request);
// An OpenAI stream's usage chunk: "choices" empty, "usage" an object.
bool IsUsageOnlyChunk(absl::string_view event);

}  // namespace proxy

class PROMPTCACHE_HIDDEN ProxyServer::Impl {
 public:
  Impl(Cache& cache, ProxyOptions options)
      : cache_(cache),
        options_(std::move(options)),
        client_(cache, [](const Request&) -> absl::StatusOr<Response> {
          return absl::InternalError("proxy calls always name the upstream");
        }) {}

  absl::Status Init();
  absl::Status Start();
  void Shutdown();
  int port() const { return port_; }
  std::string AuthenticationSummary() const;

 private:
  struct Upstream {
    ProxyUpstream config;
    std::string base;  // without a trailing "/v1"
    std::string key;   // the proxy's own key, or empty
    // Where the key came from, for messages (never the key itself).
    std::string key_source;
  };
  // What one model call did upstream (for relaying its bytes verbatim).
  struct Outcome {
    bool called = false;
    std::optional<http::HttpReply> reply;
  };

  const Upstream& UpstreamFor(wire::Api api) const {
    return api == wire::Api::kAnthropicMessages ? anthropic_ : openai_;
  }
  http::TransportOptions TransportFor(const Upstream& up) const;
  // Upstream request headers: auth (ours or the client's) and the client's
  // provider headers.
  http::HeaderList UpstreamHeaders(const Upstream& up,
                                   const httplib::Request& req,
                                   bool model_call) const;
  // The client's key for `up`: the header that upstream reads
  // (Authorization for OpenAI, x-api-key else Authorization for Anthropic).
  // Only that header goes upstream, so the key that picks the namespace is
  // the key the upstream checks.
  std::string ClientKey(const Upstream& up, const httplib::Request& req) const;
  // Every key on the call, to redact from what is relayed or logged.
  std::vector<std::string> Secrets(const Upstream& up,
                                   const httplib::Request& req) const;
  // The tenant part of the namespace, or Unauthenticated when `up` uses the
  // proxy's own key and the client presented no configured key.
  absl::StatusOr<std::string> TenantFor(const Upstream& up,
                                        const httplib::Request& req) const;
  std::string NamespaceFor(const std::string& tenant,
                           const std::optional<std::string>& header_ns) const;
  // True when `req` may read /metrics and /promptcache/stats; else sends 401.
  bool StatsAllowed(const httplib::Request& req, httplib::Response& res) const;

  // Debian's cpp-httplib 0.11 applies payload_max_length only to bodies
  // with a Content-Length: a chunked upload would be read whole into memory.
  // Every route that takes a body reads it through this, which keeps at most
  // max_body_bytes (413 past that).
  using BodyHandler =
      std::function<void(const httplib::Request&, httplib::Response&)>;
  httplib::Server::HandlerWithContentReader WithBoundedBody(
      BodyHandler handler);

  void HandleModelCall(wire::Api api, const httplib::Request& req,
                       httplib::Response& res);
  std::optional<Response> ServeBuffered(wire::Api api, const Upstream& up,
                                        wire::ParsedCall& parsed,
                                        const CallOptions& call,
                                        http::HttpRequest upstream_req,
                                        const httplib::Request& req,
                                        httplib::Response& res,
                                        proxy::AccessRecord& record);
  void ServeStreamed(wire::Api api, const Upstream& up,
                     wire::ParsedCall& parsed, const CallOptions& call,
                     http::HttpRequest upstream_req,
                     const httplib::Request& req, httplib::Response& res,
                     proxy::AccessRecord& record, absl::Time start);
  void HandlePassthrough(const Upstream& up, const httplib::Request& req,
                         httplib::Response& res, const char* cache_label);
  void SendError(wire::Api api, int http_status, absl::string_view message,
                 absl::string_view param, httplib::Response& res) const;
  // Relays an upstream error reply as it came, else renders `status`.
  // The proxy's own key is never relayed, even when an upstream echoes it.
  std::string WithoutProxyKeys(std::string body) const;
  void SendFailure(wire::Api api, const absl::Status& status,
                   const Outcome& outcome, httplib::Response& res) const;
  void SetCacheHeaders(const Response& r, httplib::Response& res) const;
  void Finish(proxy::AccessRecord& record, absl::Time start,
              const Response* answer, bool upstream_error);

  Cache& cache_;
  ProxyOptions options_;
  CachedClient client_;
  Upstream openai_;
  Upstream anthropic_;
  std::unique_ptr<proxy::AccessLog> access_log_;
  proxy::ProxyMetrics metrics_;
  httplib::Server server_;
  std::thread listener_;
  int port_ = 0;
  std::atomic<bool> draining_{false};
  // Streams being relayed, so that a shutdown past its drain time can end
  // them.
  absl::Mutex relays_mu_;
  absl::flat_hash_set<proxy::StreamRelay*> live_relays_
      ABSL_GUARDED_BY(relays_mu_);
  std::atomic<int64_t> model_calls_in_flight_{0};
  // Client key hash -> tenant (set once in Init, read-only afterwards).
  absl::flat_hash_map<std::string, std::string> tenant_by_key_hash_;
  size_t tenant_count_ = 0;
  size_t client_key_count_ = 0;
  std::once_flag shutdown_once_;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_PROXY_PROXY_IMPL_H_
