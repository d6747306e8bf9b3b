// One model call through the proxy: parse, namespace, cache, upstream,
// buffered or streamed reply.
#include <httplib.h>

#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "http/http_transport.h"
#include "http/provider_format.h"
#include "http/upstream.h"
#include "nlohmann/json.hpp"
#include "promptcache/cached_client.h"
#include "proxy/access_log.h"
#include "proxy/control_headers.h"
#include "proxy/proxy_impl.h"
#include "proxy/stream_relay.h"

namespace promptcache {
namespace {

using Json = nlohmann::json;
using proxy::AddHeadersToKey;
using proxy::IsHit;
using proxy::IsUsageOnlyChunk;
using proxy::kEventStream;
using proxy::kJson;
using proxy::ResponseIdOf;
using proxy::StatusLabel;
using proxy::UpstreamFailure;
using wire::Api;

}  // namespace

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

}  // namespace promptcache
