#include "promptcache/http_model_client.h"

#include <exception>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "http/http_transport.h"
#include "http/provider_format.h"
#include "http/upstream.h"

namespace promptcache {

absl::StatusOr<HttpModelClient> HttpModelClient::Create(
    HttpModelClientOptions options) {
  const char* who = options.api == ProviderApi::kAnthropicMessages
                        ? "anthropic client"
                        : "openai client";
  absl::StatusOr<std::string> base =
      http::NormalizeBaseUrl(options.base_url, absl::StrCat(who, ": base_url"));
  if (!base.ok()) return base.status();
  if (absl::Status s = http::CheckUpstreamOptions(options, who); !s.ok()) {
    return s;
  }
  if (options.default_max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": default_max_tokens must be >= 1"));
  }
  if (options.api_key_env.empty()) {
    options.api_key_env = options.api == ProviderApi::kAnthropicMessages
                              ? "ANTHROPIC_API_KEY"
                              : "OPENAI_API_KEY";
  }
  if (absl::Status s = http::ResolveApiKey(&options, who); !s.ok()) {
    return s;
  }
  HttpModelClient client;
  absl::string_view root = *base;
  absl::ConsumeSuffix(&root, "/v1");
  client.endpoint_ = absl::StrCat(root, wire::ApiPath(options.api));
  client.options_ = std::move(options);
  return client;
}

absl::StatusOr<Response> HttpModelClient::Complete(
    const Request& request) const {
  try {
    const std::string where = absl::StrCat(
        wire::ApiName(options_.api), ": POST ", http::UrlForErrors(endpoint_),
        " (model ", http::Quote(request.model), ")");
    http::HttpRequest post;
    post.url = endpoint_;
    post.body = wire::RenderRequestBody(options_.api, request, /*stream=*/false,
                                        options_.default_max_tokens);
    post.headers = {{"Content-Type", "application/json"},
                    {"Accept", "application/json"}};
    if (options_.api == ProviderApi::kAnthropicMessages) {
      post.headers.emplace_back("anthropic-version",
                                options_.anthropic_version);
      if (!options_.api_key.empty()) {
        post.headers.emplace_back("x-api-key", options_.api_key);
      }
    } else if (!options_.api_key.empty()) {
      post.headers.emplace_back("Authorization",
                                absl::StrCat("Bearer ", options_.api_key));
    }
    for (const auto& header : options_.extra_headers) {
      post.headers.push_back(header);
    }
    http::TransportOptions transport = http::TransportFor(options_);
    transport.user_agent = "promptcache-model-client";
    const std::vector<std::string> secrets = {options_.api_key};

    const absl::Time start = absl::Now();
    absl::StatusOr<http::HttpReply> reply =
        http::SendWithRetries(post, transport, where);
    if (!reply.ok()) return http::Redact(reply.status(), secrets);
    if (reply->status < 200 || reply->status >= 300) {
      return http::StatusForReply(*reply, where, secrets);
    }
    absl::StatusOr<Response> answer =
        wire::ParseResponseBody(options_.api, reply->body);
    if (!answer.ok()) {
      return http::Redact(
          absl::Status(answer.status().code(),
                       absl::StrCat(where, ": ", answer.status().message())),
          secrets);
    }
    answer->upstream_latency = absl::Now() - start;
    return answer;
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("model client: unexpected error: ", e.what()));
  }
}

}  // namespace promptcache
