// Helpers of the proxy's files (declared in proxy_impl.h).
#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "proxy/proxy_impl.h"

namespace promptcache {
namespace proxy {

using Json = nlohmann::json;

// Marks a status as the upstream's failure, which clients see without its
// message (it names the upstream's address); coalesced waiters get the
// same status, mark included.
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

}  // namespace proxy
}  // namespace promptcache
