// ProxyServer: promptcache as an OpenAI- and Anthropic-compatible HTTP proxy.
//
// Services in any language point their SDK's base URL at the proxy:
//   POST /v1/chat/completions, /v1/completions  -> cached, forwarded to the
//                                                  OpenAI-compatible upstream
//   POST /v1/messages                           -> cached, forwarded to the
//                                                  Anthropic upstream
//   any other /v1/... (e.g. GET /v1/models)     -> forwarded unchanged
//   GET /metrics (Prometheus), /promptcache/stats (JSON), /healthz
//
// Tenants: by default each client's own API key is forwarded upstream and
// the namespace of a call is a hash of it, so two keys never share answers.
// An upstream that holds the proxy's own key (ProxyUpstream::api_key or
// api_key_env) requires client authentication: clients present keys configured
// in ProxyOptions::client_keys, each mapped to a tenant whose namespace it
// uses, and get 401 otherwise. An x-promptcache-namespace header names a
// sub-namespace within the tenant's (or, with NamespaceMode::kHeader behind
// a trusted gateway, the namespace itself). Keys are never stored or logged.
//
// Per-call controls are x-promptcache-* request headers (see
// src/proxy/control_headers.h); responses carry x-promptcache-status (HIT,
// SEMANTIC_HIT, MISS, BYPASS, REFRESH, COALESCED), -similarity, -entry,
// -request and -saved-usd. Streamed calls ("stream": true) are relayed as
// they arrive and stored once complete; hits are replayed as server-sent
// events in the provider's own chunk format; an aborted stream is never
// stored. Errors use the provider's own JSON error format.
#ifndef PROMPTCACHE_PROXY_SERVER_H_
#define PROMPTCACHE_PROXY_SERVER_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "promptcache/cache.h"
#include "promptcache/export.h"
#include "promptcache/upstream_options.h"

namespace promptcache {

// One upstream of the proxy (UpstreamOptions). Its key: none by default,
// and each client's own key is forwarded. A key of the proxy's own
// (api_key, or api_key_env naming the variable that holds it) is sent
// upstream for every call instead; clients then authenticate with
// ProxyOptions::client_keys, and only GET requests pass through to
// endpoints other than model calls (clients cannot act on the operator's
// account). `timeout` bounds a call with its retries (a stream: also the
// longest silence between two of its chunks); retries happen only before
// any byte reached the client. extra_headers go with every call.
struct ProxyUpstream : UpstreamOptions {
  // Backend name in cache keys, prices and reports.
  std::string backend;

  static ProxyUpstream To(std::string base_url, std::string backend) {
    ProxyUpstream up;
    up.base_url = std::move(base_url);
    up.backend = std::move(backend);
    return up;
  }
};

enum class NamespaceMode {
  // Namespace = hash of the client's API key [+ "/" + the header's name].
  kApiKey,
  // Namespace = the x-promptcache-namespace header (else "default"); for
  // deployments behind a gateway that authenticates tenants itself.
  kHeader,
};

struct ProxyOptions {
  std::string host = "127.0.0.1";
  // 0 picks a free port (see ProxyServer::port()).
  int port = 8080;
  // No key of the proxy's own by default: with OPENAI_API_KEY merely set in
  // its environment, a proxy would otherwise serve anyone, with any or no
  // key, on the operator's account.
  ProxyUpstream openai = ProxyUpstream::To("https://api.openai.com", "openai");
  ProxyUpstream anthropic =
      ProxyUpstream::To("https://api.anthropic.com", "anthropic");
  NamespaceMode namespace_mode = NamespaceMode::kApiKey;
  // Client key -> tenant name, for upstreams that use the proxy's own key:
  // a client sends its key as `Authorization: Bearer KEY` (or `x-api-key`
  // to the Anthropic route) and is served in its tenant's namespace; several
  // keys may map to one tenant, which then shares its answers. Create
  // refuses an upstream with its own key and no client keys, unless
  // allow_unauthenticated_clients says that anyone who can reach the port
  // may spend on that key (a private network, say).
  std::map<std::string, std::string> client_keys;
  bool allow_unauthenticated_clients = false;
  // /metrics and /promptcache/stats report totals over every tenant. false
  // (default): open to whoever reaches the port, as monitoring endpoints
  // usually are (bind to a private address); true: they need a configured
  // client key.
  bool protect_stats = false;
  // Larger request bodies get 413 in the provider's error format. Keep the
  // cache's Options::canonical.max_request_bytes at least this large, or
  // larger bodies are refused (400) by the cache instead.
  size_t max_body_bytes = size_t{8} << 20;
  // Connections served at once (one worker thread each); further accepted
  // connections wait in a queue of max_pending_connections, and beyond
  // that in the kernel's backlog.
  int max_connections = 64;
  int max_pending_connections = 1024;
  // Connections the kernel queues before the proxy accepts them (capped by
  // net.core.somaxconn). cpp-httplib alone would leave it at 5.
  int listen_backlog = 1024;
  // An idle keep-alive connection is closed after this long.
  absl::Duration keep_alive_timeout = absl::Seconds(5);
  // Requests per keep-alive connection before it is closed.
  int keep_alive_max_requests = 10000;
  absl::Duration read_timeout = absl::Seconds(30);
  absl::Duration write_timeout = absl::Seconds(30);
  // JSON-lines access log: "" none, "-" stderr, else a file (appended).
  std::string access_log;
  // Answer 404 model_not_found for models without a price instead of
  // forwarding them (catches typos that would otherwise cost a round trip
  // and go unreported in savings).
  bool reject_unpriced_models = false;
  // Text bytes per replayed SSE chunk.
  size_t replay_chunk_bytes = 64;
};

// Reads client keys from a JSON file: an object whose names are keys and
// whose values are tenant names, e.g. {"sk-team-a-1": "team-a"}. A file
// keeps keys out of command lines (ps) and config files. InvalidArgument
// (naming the file and what is wrong) when it is unreadable, not such an
// object, or empty.
PROMPTCACHE_EXPORT absl::StatusOr<std::map<std::string, std::string>>
LoadClientKeys(const std::string& path);

class PROMPTCACHE_EXPORT ProxyServer {
 public:
  // Checks the options; `cache` must outlive the server.
  static absl::StatusOr<std::unique_ptr<ProxyServer>> Create(
      Cache& cache, ProxyOptions options);
  // Shuts down if still running.
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Binds and starts serving on background threads. Unavailable when the
  // address cannot be bound.
  absl::Status Start();
  // The bound port (after Start()).
  int port() const;
  // One line per upstream saying whose key goes upstream and how clients
  // authenticate, for a start-up message.
  std::string AuthenticationSummary() const;
  // Stops accepting, lets in-flight requests (streams included) finish,
  // joins all threads. Idempotent.
  void Shutdown();

  class Impl;

 private:
  explicit ProxyServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_PROXY_SERVER_H_
