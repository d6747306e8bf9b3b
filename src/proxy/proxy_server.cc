// The proxy: an httplib server in front of a CachedClient, speaking the
// OpenAI and Anthropic wire formats. This file sets it up (options, upstreams,
// client keys, routes), starts and shuts it down; proxy_impl.h lists the
// others.
#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "http/http_transport.h"
#include "http/provider_format.h"
#include "http/upstream.h"
#include "nlohmann/json.hpp"
#include "proxy/access_log.h"
#include "proxy/proxy_impl.h"
#include "proxy/stream_relay.h"
#include "util/file_text.h"

namespace promptcache {
namespace {

using Json = nlohmann::json;
using proxy::IsTenantName;
using proxy::KeyHash;
using proxy::kJson;
using wire::Api;

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
}  // namespace

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
