// The proxy: an httplib server in front of a CachedClient, speaking the
// OpenAI and Anthropic wire formats. Long (~1,400 lines) because the model
// call handler (parse, namespace, cache, upstream, stream relay, errors) is
// one flow over one Impl's state; splitting it into handler files behind a
// private header is left for later (issue 12's note).
#include "promptcache/proxy_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "http/http_transport.h"
#include "http/provider_format.h"
#include "http/upstream.h"
#include "nlohmann/json.hpp"
#include "promptcache/cached_client.h"
#include "promptcache/keys.h"
#include "proxy/access_log.h"
#include "proxy/control_headers.h"
#include "proxy/metrics.h"
#include "proxy/stream_relay.h"
#include "util/file_text.h"

namespace promptcache {
namespace {

using Json = nlohmann::json;
using wire::Api;

constexpr char kJson[] = "application/json";
constexpr char kEventStream[] = "text/event-stream";

// A TaskQueue with a fixed number of workers whose enqueue blocks while
// `max_pending` connections already wait: the accept loop then stops and
// the kernel's backlog holds further clients.
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(int workers, int max_pending) : max_pending_(max_pending) {
    for (int i = 0; i < workers; ++i) {
      threads_.emplace_back([this] { Work(); });
    }
  }
  ~BoundedPool() override = default;

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    room_.wait(lock, [&] {
      return jobs_.size() < static_cast<size_t>(max_pending_) || shutdown_;
    });
    jobs_.push_back(std::move(fn));
    work_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    work_.notify_all();
    room_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) return;  // Shut down and drained.
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      room_.notify_one();
      fn();
    }
  }

  const int max_pending_;
  std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable room_;
  std::deque<std::function<void()>> jobs_;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

// Marks a status as the upstream's failure, which clients see without its
// message (it names the upstream's address); coalesced waiters get the
// same status, mark included.
constexpr char kUpstreamFailure[] = "promptcache.upstream_failure";
absl::Status UpstreamFailure(absl::Status status) {
  status.SetPayload(kUpstreamFailure, absl::Cord("1"));
  return status;
}

// Tenant names become namespace prefixes: the header's characters only, so
// that "acme" + header "prod" can never equal tenant "acme/prod".
bool IsTenantName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  return absl::c_all_of(name, [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
           c == '_' || c == ':' || c == '-';
  });
}

std::string BearerToken(const httplib::Request& req) {
  const std::string auth = req.get_header_value("authorization");
  absl::string_view token = absl::StripAsciiWhitespace(auth);
  if (token.size() > 7 &&
      absl::EqualsIgnoreCase(token.substr(0, 7), "bearer ")) {
    token = absl::StripAsciiWhitespace(token.substr(7));
  }
  return std::string(token);
}

// A one-way hash: keys are told apart (and looked up) without keeping them.
std::string KeyHash(absl::string_view key) {
  return HashBytes(absl::StrCat("promptcache-tenant:", key)).ToHex();
}

bool IsHopByHop(absl::string_view lower_name) {
  static constexpr absl::string_view kDropped[] = {"connection",
                                                   "keep-alive",
                                                   "proxy-authenticate",
                                                   "proxy-authorization",
                                                   "te",
                                                   "trailer",
                                                   "transfer-encoding",
                                                   "upgrade",
                                                   "host",
                                                   "content-length",
                                                   "accept-encoding",
                                                   "content-encoding",
                                                   "remote_addr",
                                                   "remote_port",
                                                   "local_addr",
                                                   "local_port"};
  for (absl::string_view name : kDropped) {
    if (lower_name == name) return true;
  }
  return absl::StartsWith(lower_name, "x-promptcache-");
}

// Client headers that change how the provider answers and are forwarded on
// cached calls (everything else is ours or transport).
bool IsForwardedOnModelCalls(absl::string_view lower_name) {
  return lower_name == "anthropic-version" || lower_name == "anthropic-beta" ||
         lower_name == "openai-organization" ||
         lower_name == "openai-project" || lower_name == "openai-beta";
}

int64_t ToNanoDollars(double dollars) {
  return static_cast<int64_t>(std::llround(dollars * 1e9));
}

// The response id's unique part: the request's key (24 hex digits), the
// same for every answer to the same request.
std::string ResponseIdOf(const Response& r) {
  return r.request_key.has_value() ? r.request_key->ToHex().substr(0, 24)
                                   : std::string(24, '0');
}

// The status a response header reports for a served call.
std::string StatusLabel(const Response& r) {
  return CacheStatusName(r.cache_status);
}

bool IsHit(const Response& r) {
  return r.cache_status == CacheStatus::kExactHit ||
         r.cache_status == CacheStatus::kSemanticHit ||
         r.cache_status == CacheStatus::kCoalesced;
}

// The provider headers that can change an answer, as a reserved
// "pc_headers" member of the request's extra parameters.
absl::Status AddHeadersToKey(const httplib::Request& req, Request* request) {
  Json headers = Json::object();
  for (const char* name :
       {"anthropic-beta", "anthropic-version", "openai-beta"}) {
    if (!req.has_header(name)) continue;
    // Comma-separated lists in any order and spacing mean the same betas.
    std::vector<std::string> values;
    for (size_t i = 0; i < req.get_header_value_count(name); ++i) {
      for (absl::string_view v :
           absl::StrSplit(req.get_header_value(name, i), ',')) {
        v = absl::StripAsciiWhitespace(v);
        if (!v.empty()) values.emplace_back(v);
      }
    }
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    headers[name] = values;
  }
  if (headers.empty()) return absl::OkStatus();
  Json extra = request->params.extra_json.empty()
                   ? Json::object()
                   : Json::parse(request->params.extra_json, nullptr, false);
  if (!extra.is_object()) {
    return absl::InternalError("extra parameters are not a JSON object");
  }
  if (extra.contains("pc_headers")) {
    return absl::InvalidArgumentError("pc_headers: reserved field name");
  }
  extra["pc_headers"] = std::move(headers);
  request->params.extra_json =
      extra.dump(-1, ' ', false, Json::error_handler_t::replace);
  return absl::OkStatus();
}

// An OpenAI stream's usage chunk: "choices" empty, "usage" an object.
bool IsUsageOnlyChunk(absl::string_view event) {
  if (!absl::StrContains(event, "usage")) return false;
  for (absl::string_view line : absl::StrSplit(event, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, "data:")) continue;
    const Json data = Json::parse(line.begin(), line.end(), nullptr, false);
    if (!data.is_object()) continue;
    auto choices = data.find("choices");
    auto usage = data.find("usage");
    return choices != data.end() && choices->is_array() && choices->empty() &&
           usage != data.end() && usage->is_object();
  }
  return false;
}

}  // namespace

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

  const Upstream& UpstreamFor(Api api) const {
    return api == Api::kAnthropicMessages ? anthropic_ : openai_;
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

  void HandleModelCall(Api api, const httplib::Request& req,
                       httplib::Response& res);
  std::optional<Response> ServeBuffered(Api api, const Upstream& up,
                                        wire::ParsedCall& parsed,
                                        const CallOptions& call,
                                        http::HttpRequest upstream_req,
                                        const httplib::Request& req,
                                        httplib::Response& res,
                                        proxy::AccessRecord& record);
  void ServeStreamed(Api api, const Upstream& up, wire::ParsedCall& parsed,
                     const CallOptions& call, http::HttpRequest upstream_req,
                     const httplib::Request& req, httplib::Response& res,
                     proxy::AccessRecord& record, absl::Time start);
  void HandlePassthrough(const Upstream& up, const httplib::Request& req,
                         httplib::Response& res, const char* cache_label);
  void SendError(Api api, int http_status, absl::string_view message,
                 absl::string_view param, httplib::Response& res) const;
  // Relays an upstream error reply as it came, else renders `status`.
  // The proxy's own key is never relayed, even when an upstream echoes it.
  std::string WithoutProxyKeys(std::string body) const;
  void SendFailure(Api api, const absl::Status& status, const Outcome& outcome,
                   httplib::Response& res) const;
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

absl::Status ProxyServer::Impl::Init() {
  for (auto [config, upstream, what] :
       {std::tuple{&options_.openai, &openai_, "openai"},
        std::tuple{&options_.anthropic, &anthropic_, "anthropic"}}) {
    absl::StatusOr<std::string> base = http::NormalizeBaseUrl(
        config->base_url, absl::StrCat("proxy: ", what, " base_url"));
    if (!base.ok()) return base.status();
    absl::string_view root = *base;
    absl::ConsumeSuffix(&root, "/v1");
    upstream->base = std::string(root);
    if (config->backend.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("proxy: ", what, " backend name is empty"));
    }
    const std::string who = absl::StrCat("proxy: ", what, " upstream");
    if (absl::Status s = http::CheckUpstreamOptions(*config, who); !s.ok()) {
      return s;
    }
    upstream->config = *config;
    upstream->key_source = config->api_key.empty()
                               ? config->api_key_env
                               : std::string("ProxyUpstream::api_key");
    if (absl::Status s = http::ResolveApiKey(&upstream->config, who); !s.ok()) {
      return s;
    }
    upstream->key = upstream->config.api_key;
  }
  // Client keys: checked once, kept only as hashes.
  for (const auto& [key, tenant] : options_.client_keys) {
    if (key.empty() || tenant.empty()) {
      return absl::InvalidArgumentError(
          "proxy: client_keys holds an empty key or tenant name");
    }
    if (absl::Status s = http::CheckHeaderValue(key, "proxy: a client key");
        !s.ok()) {
      return s;
    }
    if (!IsTenantName(tenant)) {
      return absl::InvalidArgumentError(
          absl::StrCat("proxy: tenant name ", http::Quote(tenant),
                       " must be 1-128 of A-Z a-z 0-9 . _ : -"));
    }
    tenant_by_key_hash_[KeyHash(key)] = tenant;
  }
  if (!options_.client_keys.empty() &&
      options_.namespace_mode == NamespaceMode::kHeader) {
    // The header alone would let any authenticated client name any
    // tenant's namespace.
    return absl::InvalidArgumentError(
        "proxy: client keys and the header namespace mode exclude each "
        "other (tenants come from the keys)");
  }
  {
    absl::flat_hash_set<std::string> tenants;
    for (const auto& entry : options_.client_keys) tenants.insert(entry.second);
    tenant_count_ = tenants.size();
  }
  // Kept as hashes only from here on.
  client_key_count_ = options_.client_keys.size();
  options_.client_keys.clear();
  for (const Upstream* up : {&openai_, &anthropic_}) {
    if (!up->key.empty() && client_key_count_ == 0 &&
        !options_.allow_unauthenticated_clients) {
      return absl::InvalidArgumentError(absl::StrCat(
          "proxy: the ", up->config.backend,
          " upstream uses the proxy's own key (from ", up->key_source,
          "), so clients must authenticate: configure client keys "
          "(--client-keys-file), or allow unauthenticated clients to let "
          "anyone who reaches the port spend on that key"));
    }
  }
  if (options_.protect_stats && client_key_count_ == 0) {
    return absl::InvalidArgumentError(
        "proxy: protect_stats needs client keys (--client-keys-file)");
  }
  if (options_.max_connections < 1 || options_.max_pending_connections < 1 ||
      options_.listen_backlog < 1) {
    return absl::InvalidArgumentError(
        "proxy: max_connections, max_pending_connections and listen_backlog "
        "must be >= 1");
  }
  if (options_.max_body_bytes < 1024) {
    return absl::InvalidArgumentError("proxy: max_body_bytes must be >= 1024");
  }
  if (options_.port < 0 || options_.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("proxy: port must be in [0, 65535], got ", options_.port));
  }
  if (options_.replay_chunk_bytes < 1) {
    return absl::InvalidArgumentError("proxy: replay_chunk_bytes must be >= 1");
  }
  if (!options_.access_log.empty()) {
    absl::StatusOr<std::unique_ptr<proxy::AccessLog>> log =
        proxy::AccessLog::Open(options_.access_log);
    if (!log.ok()) return log.status();
    access_log_ = std::move(*log);
  }

  const int workers = options_.max_connections;
  const int pending = options_.max_pending_connections;
  server_.new_task_queue = [workers, pending] {
    return new BoundedPool(workers, pending);
  };
  server_.set_payload_max_length(options_.max_body_bytes);
  server_.set_keep_alive_max_count(
      static_cast<size_t>(std::max(1, options_.keep_alive_max_requests)));
  server_.set_keep_alive_timeout(std::max<time_t>(
      1,
      static_cast<time_t>(absl::ToInt64Seconds(options_.keep_alive_timeout))));
  auto split = [](absl::Duration d, auto setter) {
    const int64_t us = std::max<int64_t>(1000, absl::ToInt64Microseconds(d));
    setter(static_cast<time_t>(us / 1000000),
           static_cast<time_t>(us % 1000000));
  };
  split(options_.read_timeout,
        [&](time_t s, time_t us) { server_.set_read_timeout(s, us); });
  split(options_.write_timeout,
        [&](time_t s, time_t us) { server_.set_write_timeout(s, us); });
  server_.set_tcp_nodelay(true);

  auto model_route = [this](Api api) {
    return WithBoundedBody(
        [this, api](const httplib::Request& req, httplib::Response& res) {
          HandleModelCall(api, req, res);
        });
  };
  server_.Post("/v1/chat/completions", model_route(Api::kOpenAiChat));
  server_.Post("/v1/completions", model_route(Api::kOpenAiCompletions));
  server_.Post("/v1/messages", model_route(Api::kAnthropicMessages));
  server_.Get(
      "/healthz", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(draining_ ? "draining\n" : "ok\n", "text/plain");
        if (draining_) res.status = 503;
      });
  server_.Get(
      "/metrics", [this](const httplib::Request& req, httplib::Response& res) {
        if (!StatsAllowed(req, res)) return;
        res.set_content(metrics_.Prometheus(), "text/plain; version=0.0.4");
      });
  server_.Get("/promptcache/stats", [this](const httplib::Request& req,
                                           httplib::Response& res) {
    if (!StatsAllowed(req, res)) return;
    Json out = {{"proxy", metrics_.Json()}};
    if (absl::StatusOr<CacheStats> stats = cache_.Stats(); stats.ok()) {
      out["cache"] = {{"entries", stats->entries},
                      {"expired_entries", stats->expired_entries},
                      {"entry_bytes", stats->entry_bytes},
                      {"disk_bytes", stats->disk_bytes},
                      {"lookup_errors", stats->lookup_errors},
                      {"embedder_errors", stats->embedder_errors},
                      {"store_errors", stats->store_errors},
                      {"wal_bytes_dropped", stats->wal_bytes_dropped}};
      if (!stats->scan_error.empty()) {
        out["cache"]["scan_error"] = stats->scan_error;
      }
    }
    if (absl::StatusOr<SavingsReport> report = cache_.Report(); report.ok()) {
      // The same row format as `promptcache report --json`.
      out["ledger_total"] =
          Json::parse(LedgerRowJson(report->total, /*with_names=*/false));
    }
    res.set_content(out.dump(), kJson);
  });
  // Everything else under /v1 goes upstream unchanged.
  auto passthrough = [this](const httplib::Request& req,
                            httplib::Response& res) {
    const bool anthropic = absl::StartsWith(req.path, "/v1/messages") ||
                           req.has_header("x-api-key") ||
                           req.has_header("anthropic-version");
    HandlePassthrough(anthropic ? anthropic_ : openai_, req, res,
                      "PASSTHROUGH");
  };
  const char* kAnyV1 = R"(/v1/.*)";
  server_.Get(kAnyV1, passthrough);
  server_.Post(kAnyV1, WithBoundedBody(passthrough));
  server_.Put(kAnyV1, WithBoundedBody(passthrough));
  server_.Patch(kAnyV1, WithBoundedBody(passthrough));
  server_.Delete(kAnyV1, WithBoundedBody(passthrough));
  // Any other path: 404, its body read through the same limit (httplib
  // alone would read a chunked one whole).
  auto not_found =
      WithBoundedBody([](const httplib::Request&, httplib::Response& res) {
        res.status = 404;
      });
  server_.Post(".*", not_found);
  server_.Put(".*", not_found);
  server_.Patch(".*", not_found);
  server_.Delete(".*", not_found);

  // Errors httplib raises itself (413, 404, 400) in the provider's format.
  server_.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        const Api api = absl::StartsWith(req.path, "/v1/messages")
                            ? Api::kAnthropicMessages
                            : Api::kOpenAiChat;
        std::string message;
        switch (res.status) {
          case 413:
            message = absl::StrCat("request body larger than ",
                                   options_.max_body_bytes, " bytes");
            break;
          case 404:
            message = absl::StrCat("no such endpoint: ", req.method, " ",
                                   http::Quote(req.path));
            break;
          default:
            message = absl::StrCat("HTTP ", res.status);
        }
        SendError(api, res.status, message, "", res);
        return httplib::Server::HandlerResponse::Handled;
      }));
  server_.set_exception_handler([this](const httplib::Request& req,
                                       httplib::Response& res,
                                       std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    const Api api = absl::StartsWith(req.path, "/v1/messages")
                        ? Api::kAnthropicMessages
                        : Api::kOpenAiChat;
    SendError(api, 500, absl::StrCat("proxy error: ", what), "", res);
  });
  return absl::OkStatus();
}

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

void ProxyServer::Impl::HandleModelCall(Api api, const httplib::Request& req,
                                        httplib::Response& res) {
  const absl::Time start = absl::Now();
  metrics_.RequestStarted();
  model_calls_in_flight_.fetch_add(1);
  absl::Cleanup done = [this] {
    metrics_.RequestFinished();
    model_calls_in_flight_.fetch_sub(1);
  };
  const Upstream& up = UpstreamFor(api);
  proxy::AccessRecord record;
  record.time = absl::Now();
  record.method = req.method;
  record.path = req.path;
  record.api = wire::ApiName(api);
  record.backend = up.config.backend;
  auto fail = [&](int http_status, absl::string_view message,
                  absl::string_view param = "") {
    SendError(api, http_status, message, param, res);
    record.http_status = http_status;
    record.cache_status = "ERROR";
    record.error = std::string(message);
    Finish(record, start, nullptr, false);
  };
  if (draining_) {
    fail(503, "the proxy is shutting down; retry on another instance");
    return;
  }
  absl::StatusOr<wire::ParsedCall> parsed =
      wire::ParseRequestBody(api, req.body);
  if (!parsed.ok()) {
    fail(400, parsed.status().message());
    return;
  }
  record.model = parsed->request.model;
  record.stream = parsed->stream;
  absl::StatusOr<proxy::Controls> controls = proxy::ParseControlHeaders(
      [&req](absl::string_view name) -> std::optional<std::string> {
        const std::string key(name);
        if (!req.has_header(key)) return std::nullopt;
        return req.get_header_value(key);
      });
  if (!controls.ok()) {
    fail(400, controls.status().message());
    return;
  }
  absl::StatusOr<std::string> tenant = TenantFor(up, req);
  if (!tenant.ok()) {
    fail(401, tenant.status().message());
    return;
  }
  parsed->request.ns = NamespaceFor(*tenant, controls->ns);
  parsed->request.backend = up.config.backend;
  record.ns = parsed->request.ns;
  if (options_.reject_unpriced_models &&
      cache_.options().prices.Find(up.config.backend, parsed->request.model) ==
          nullptr) {
    fail(404,
         absl::StrCat("The model `", http::Quote(parsed->request.model),
                      "` does not exist or has no price on this proxy"),
         "model");
    return;
  }
  if (!parsed->uncacheable_reason.empty()) {
    // One cached answer cannot stand for this call: forward it as it is.
    res.set_header("x-promptcache-reason",
                   http::Quote(parsed->uncacheable_reason));
    HandlePassthrough(up, req, res, "BYPASS");
    return;
  }
  // Headers that select API behaviour (betas, versions) can change the
  // answer: they are part of the key.
  if (absl::Status s = AddHeadersToKey(req, &parsed->request); !s.ok()) {
    fail(400, s.message());
    return;
  }
  CallOptions call = controls->call;
  if (parsed->exact_only) call.semantic = false;

  http::HttpRequest upstream_req;
  upstream_req.url = absl::StrCat(up.base, req.path);
  upstream_req.headers = UpstreamHeaders(up, req, /*model_call=*/true);
  upstream_req.body = req.body;
  if (parsed->stream && api != Api::kAnthropicMessages &&
      !parsed->include_usage) {
    // Ask for usage so the ledger has real token counts; the usage chunk
    // is not relayed to a client that did not ask for it.
    Json body = Json::parse(req.body, nullptr, false);
    if (body.is_object()) {
      body["stream_options"]["include_usage"] = true;
      upstream_req.body =
          body.dump(-1, ' ', false, Json::error_handler_t::replace);
    }
  }
  if (parsed->stream) {
    ServeStreamed(api, up, *parsed, call, std::move(upstream_req), req, res,
                  record, start);
  } else {
    std::optional<Response> answer = ServeBuffered(
        api, up, *parsed, call, std::move(upstream_req), req, res, record);
    Finish(record, start, answer.has_value() ? &*answer : nullptr,
           record.cache_status == "ERROR_UPSTREAM");
  }
}

std::optional<Response> ProxyServer::Impl::ServeBuffered(
    Api api, const Upstream& up, wire::ParsedCall& parsed,
    const CallOptions& call, http::HttpRequest upstream_req,
    const httplib::Request& req, httplib::Response& res,
    proxy::AccessRecord& record) {
  Outcome outcome;
  const std::string where =
      absl::StrCat("upstream ", up.config.backend, ": POST ",
                   http::UrlForErrors(upstream_req.url));
  const http::TransportOptions transport = TransportFor(up);
  const std::vector<std::string> secrets = Secrets(up, req);
  ModelClient upstream = [&](const Request&) -> absl::StatusOr<Response> {
    outcome.called = true;
    absl::StatusOr<http::HttpReply> reply =
        http::SendWithRetries(upstream_req, transport, where);
    if (!reply.ok()) {
      return UpstreamFailure(http::Redact(reply.status(), secrets));
    }
    outcome.reply = std::move(*reply);
    if (outcome.reply->status < 200 || outcome.reply->status >= 300) {
      return http::StatusForReply(*outcome.reply, where, secrets);
    }
    return wire::ParseResponseBody(api, outcome.reply->body);
  };
  absl::StatusOr<Response> answer =
      client_.Complete(parsed.request, call, upstream);
  if (!answer.ok()) {
    SendFailure(api, answer.status(), outcome, res);
    record.cache_status = outcome.called ? "ERROR_UPSTREAM" : "ERROR";
    record.error = std::string(answer.status().message());
    record.http_status = res.status;
    record.response_bytes = res.body.size();
    return std::nullopt;
  }
  SetCacheHeaders(*answer, res);
  record.cache_status = StatusLabel(*answer);
  if (outcome.called && outcome.reply.has_value() && !IsHit(*answer)) {
    // This call's own upstream answer, byte for byte.
    res.set_content(outcome.reply->body,
                    outcome.reply->Header("content-type").value_or(kJson));
  } else {
    res.set_content(
        wire::RenderResponseBody(
            api, *answer, parsed.request.model,
            absl::StrCat(wire::ResponseIdPrefix(api), ResponseIdOf(*answer)),
            absl::ToUnixSeconds(absl::Now())),
        kJson);
  }
  res.status = 200;
  record.http_status = 200;
  record.response_bytes = res.body.size();
  return std::move(*answer);
}

void ProxyServer::Impl::ServeStreamed(
    Api api, const Upstream& up, wire::ParsedCall& parsed,
    const CallOptions& call, http::HttpRequest upstream_req,
    const httplib::Request& req, httplib::Response& res,
    proxy::AccessRecord& record, absl::Time start) {
  auto relay = std::make_shared<proxy::StreamRelay>();
  proxy::StreamRelay* r = relay.get();
  upstream_req.cancel = &r->client_gone;
  auto outcome = std::make_shared<Outcome>();
  const bool relay_usage =
      parsed.include_usage || api == Api::kAnthropicMessages;
  // The reader thread owns copies of everything it uses; it never holds the
  // relay (the relay joins it).
  // Before upstream_req is moved into the reader.
  std::string where = absl::StrCat("upstream ", up.config.backend, ": POST ",
                                   http::UrlForErrors(upstream_req.url));
  r->reader = std::thread(
      [this, r, api, outcome, relay_usage, request = parsed.request, call,
       upstream_req = std::move(upstream_req), where = std::move(where),
       transport = TransportFor(up), secrets = Secrets(up, req)] {
        ModelClient upstream = [&](const Request&) -> absl::StatusOr<Response> {
          outcome->called = true;
          wire::SseAssembler assembler(api);
          proxy::SseSplitter splitter;
          absl::Status stream_error;
          auto relay_event = [&](std::string event) {
            if (absl::Status s = assembler.Feed(event); !s.ok()) {
              if (stream_error.ok()) stream_error = s;
            }
            if (!relay_usage && IsUsageOnlyChunk(event)) {
              return;  // The usage chunk we asked for on the client's behalf.
            }
            r->Push(std::move(event));
          };
          http::BodySink sink = [&](absl::string_view bytes) {
            if (r->client_gone.load()) return false;
            for (std::string& event : splitter.Add(bytes)) {
              relay_event(std::move(event));
            }
            return true;
          };
          absl::StatusOr<http::HttpReply> reply =
              http::SendWithRetries(upstream_req, transport, where, &sink);
          if (!reply.ok()) {
            return UpstreamFailure(http::Redact(reply.status(), secrets));
          }
          if (reply->status < 200 || reply->status >= 300) {
            outcome->reply = std::move(*reply);
            return http::StatusForReply(*outcome->reply, where, secrets);
          }
          if (!splitter.pending().empty()) {
            relay_event(splitter.pending() + "\n\n");
          }
          if (!stream_error.ok()) return stream_error;
          return assembler.Finish();  // Fails for a stream cut short.
        };
        r->Finish(client_.Complete(request, call, upstream));
      });

  r->WaitStartedOrDone();
  if (!r->started()) {
    // A hit, a coalesced answer or an error: known before the first byte.
    absl::StatusOr<Response> answer = r->result();
    if (!answer.ok()) {
      SendFailure(api, answer.status(), *outcome, res);
      record.cache_status = outcome->called ? "ERROR_UPSTREAM" : "ERROR";
      record.error = std::string(answer.status().message());
      record.http_status = res.status;
      record.response_bytes = res.body.size();
      Finish(record, start, nullptr, outcome->called);
      return;
    }
    SetCacheHeaders(*answer, res);
    res.set_header("Cache-Control", "no-cache");
    res.set_content(
        wire::RenderSse(
            api, *answer, parsed.request.model,
            absl::StrCat(wire::ResponseIdPrefix(api), ResponseIdOf(*answer)),
            absl::ToUnixSeconds(absl::Now()), parsed.include_usage,
            options_.replay_chunk_bytes),
        kEventStream);
    res.status = 200;
    record.cache_status = StatusLabel(*answer);
    record.http_status = 200;
    record.response_bytes = res.body.size();
    Finish(record, start, &*answer, false);
    return;
  }
  // Upstream is streaming: relay as it arrives. The answer's status is
  // decided (this call leads), only its entry key is not known yet.
  Response pending;
  pending.cache_status = call.bypass          ? CacheStatus::kBypass
                         : call.force_refresh ? CacheStatus::kRefresh
                                              : CacheStatus::kMiss;
  res.set_header("x-promptcache-status", StatusLabel(pending));
  res.set_header("Cache-Control", "no-cache");
  res.status = 200;
  record.cache_status = StatusLabel(pending);
  record.http_status = 200;
  model_calls_in_flight_.fetch_add(1);  // Until the releaser runs.
  {
    absl::MutexLock lock(&relays_mu_);
    live_relays_.insert(r);
  }
  auto bytes = std::make_shared<size_t>(0);
  res.set_chunked_content_provider(
      kEventStream,
      [relay, bytes](size_t, httplib::DataSink& sink) {
        std::string event;
        switch (relay->Pop(&event)) {
          case proxy::StreamRelay::Next::kEvent:
            if (!sink.write(event.data(), event.size())) {
              relay->client_gone.store(true);
              return false;
            }
            *bytes += event.size();
            return true;
          case proxy::StreamRelay::Next::kDone:
            // A stream that failed after it started must not look complete
            // to the client: drop the connection without the last chunk.
            if (!relay->result().ok()) return false;
            sink.done();
            return true;
          case proxy::StreamRelay::Next::kAborted:
            return false;
        }
        return false;
      },
      [this, relay, bytes, record, start](bool success) mutable {
        {
          absl::MutexLock lock(&relays_mu_);
          live_relays_.erase(relay.get());
        }
        if (!success) relay->client_gone.store(true);
        if (relay->reader.joinable()) relay->reader.join();
        const absl::StatusOr<Response>& answer = relay->result();
        record.response_bytes = *bytes;
        if (!answer.ok()) {
          record.cache_status = "ERROR_UPSTREAM";
          record.error = std::string(answer.status().message());
        }
        Finish(record, start, answer.ok() ? &*answer : nullptr, !answer.ok());
        model_calls_in_flight_.fetch_sub(1);
      });
}

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

absl::Status ProxyServer::Impl::Start() {
  // cpp-httplib's default sets SO_REUSEPORT: a second proxy on the same
  // port would bind too and take half the traffic to another database.
  // SO_REUSEADDR alone allows a restart over TIME_WAIT, not two listeners.
  // The last socket httplib set up is the one it bound (failed attempts
  // are closed).
  socket_t listening = INVALID_SOCKET;
  server_.set_socket_options([&listening](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listening = sock;
  });
  const int bound =
      options_.port == 0
          ? server_.bind_to_any_port(options_.host)
          : (server_.bind_to_port(options_.host, options_.port) ? options_.port
                                                                : -1);
  if (bound < 0) {
    return absl::UnavailableError(absl::StrCat(
        "proxy: cannot listen on ", options_.host, ":", options_.port));
  }
  port_ = bound;
  // The lambda above refers to this frame: replace it before returning.
  server_.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // httplib listens with a backlog of 5; listen() again sets ours (Linux
  // updates the backlog of a listening socket).
  if (listening != INVALID_SOCKET &&
      ::listen(listening, options_.listen_backlog) != 0) {
    return absl::UnavailableError(
        absl::StrCat("proxy: cannot set the listen backlog to ",
                     options_.listen_backlog, ": ", std::strerror(errno)));
  }
  listener_ = std::thread([this] { server_.listen_after_bind(); });
  // The socket is bound (connections queue in the backlog); wait until
  // the accept loop runs so that callers can rely on a started server.
  for (int i = 0; i < 2000 && !server_.is_running(); ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  return absl::OkStatus();
}

void ProxyServer::Impl::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    // New model calls get 503 while those in flight (streams included)
    // finish; httplib would cut streams short if stopped first.
    draining_ = true;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (model_calls_in_flight_.load() > 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    {
      absl::MutexLock lock(&relays_mu_);
      for (proxy::StreamRelay* relay : live_relays_) relay->Abort();
    }
    server_.stop();
    if (listener_.joinable()) listener_.join();
    cache_.FlushStats().IgnoreError();
  });
}

ProxyServer::ProxyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProxyServer::~ProxyServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<ProxyServer>> ProxyServer::Create(
    Cache& cache, ProxyOptions options) {
  auto impl = std::make_unique<Impl>(cache, std::move(options));
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<ProxyServer>(new ProxyServer(std::move(impl)));
}

absl::Status ProxyServer::Start() { return impl_->Start(); }
absl::StatusOr<std::map<std::string, std::string>> LoadClientKeys(
    const std::string& path) {
  absl::StatusOr<std::string> text =
      internal::ReadFileText(path, "client keys file");
  if (!text.ok()) return absl::InvalidArgumentError(text.status().message());
  Json doc = Json::parse(*text, nullptr, false);
  if (!doc.is_object() || doc.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "client keys file '", path,
        "' must hold a non-empty JSON object of key -> tenant name, e.g. "
        "{\"sk-team-a-1\": \"team-a\"}"));
  }
  std::map<std::string, std::string> keys;
  for (const auto& [key, tenant] : doc.items()) {
    if (!tenant.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("client keys file '", path,
                       "': the tenant of a key is not a string"));
    }
    keys[key] = tenant.get<std::string>();
  }
  return keys;
}

int ProxyServer::port() const { return impl_->port(); }

std::string ProxyServer::AuthenticationSummary() const {
  return impl_->AuthenticationSummary();
}
void ProxyServer::Shutdown() { impl_->Shutdown(); }

}  // namespace promptcache
