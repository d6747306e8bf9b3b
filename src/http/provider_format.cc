// Dispatch to the per-provider formats, the shared helpers, the SSE line
// parser behind SseAssembler, and error bodies (~640 lines: the helpers
// both providers' formats use, kept beside the table that dispatches to
// them).
#include "http/provider_format.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "http/format_internal.h"
#include "request/json_text.h"

namespace promptcache::wire {
namespace detail {

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool NestingWithin(absl::string_view json, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

std::string NotCached(absl::string_view finish_reason, absl::string_view why) {
  return absl::StrCat(finish_reason, " (not cached: ", why, ")");
}

absl::Status FinishAnswer(const Json& body, const Json* finish,
                          absl::string_view field, const std::string& uncached,
                          void (*read_usage)(const Json&, Usage*),
                          Response* out) {
  if (finish != nullptr && !finish->is_null()) {
    if (!finish->is_string())
      return FieldError(field, "must be a string or null");
    out->finish_reason = finish->get<std::string>();
  }
  if (!uncached.empty()) {
    out->finish_reason = NotCached(out->finish_reason, uncached);
  }
  if (auto usage = body.find("usage"); usage != body.end()) {
    if (!usage->is_null() && !usage->is_object()) {
      return FieldError("usage", "must be an object");
    }
    read_usage(*usage, &out->usage);
  }
  return absl::OkStatus();
}

int64_t TokenCount(const Json& value) {
  // Usage numbers from a server: never negative, never large enough to
  // overflow sums or dollar arithmetic.
  constexpr int64_t kMax = int64_t{1} << 40;
  if (value.is_number_unsigned()) {
    return static_cast<int64_t>(
        std::min<uint64_t>(value.get<uint64_t>(), static_cast<uint64_t>(kMax)));
  }
  if (value.is_number_integer()) {
    return std::clamp<int64_t>(value.get<int64_t>(), 0, kMax);
  }
  return 0;
}

absl::StatusOr<Json> ParseObjectBody(absl::string_view body) {
  // nlohmann's parser, copies and dumps recurse per level: a deep body
  // would overflow the stack.
  if (!NestingWithin(body, kMaxJsonDepth)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "body: JSON nested deeper than ", kMaxJsonDepth, " levels"));
  }
  Json json;
  try {
    json = Json::parse(body.begin(), body.end());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("body is not valid JSON: ", e.what()));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError("body: must be a JSON object");
  }
  return json;
}

absl::StatusOr<std::string> RequiredModel(const Json& body) {
  auto model = body.find("model");
  if (model == body.end() || model->is_null()) {
    return FieldError("model", "required");
  }
  if (!model->is_string() || model->get_ref<const std::string&>().empty()) {
    return FieldError("model", "must be a non-empty string");
  }
  return model->get<std::string>();
}

std::string Canonical(const Json& value) {
  std::string out;
  internal::AppendCanonicalJson(&out, value);
  return out;
}

std::string Dump(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json ParseOrNull(absl::string_view text) {
  if (!NestingWithin(text, kMaxJsonDepth)) return nullptr;
  Json json = Json::parse(text.begin(), text.end(), nullptr,
                          /*allow_exceptions=*/false);
  if (json.is_discarded()) return nullptr;
  return json;
}

const Json& Field(const Json& obj, const char* key) {
  static const Json* const kNull = new Json(nullptr);
  if (!obj.is_object()) return *kNull;
  auto it = obj.find(key);
  return it == obj.end() ? *kNull : *it;
}

std::string Str(const Json& obj, const char* key, absl::string_view fallback) {
  const Json& value = Field(obj, key);
  return value.is_string() ? value.get<std::string>() : std::string(fallback);
}

int64_t Int(const Json& obj, const char* key, int64_t fallback) {
  const Json& value = Field(obj, key);
  return value.is_number_integer() ? value.get<int64_t>() : fallback;
}

absl::Status ParamsBuilder::Temperature(const Json& v,
                                        absl::string_view field) {
  if (v.is_null()) return absl::OkStatus();
  if (!v.is_number() || v.get<double>() < 0) {
    return FieldError(field, "must be a number >= 0");
  }
  params.temperature = v.get<double>();
  return absl::OkStatus();
}

absl::Status ParamsBuilder::TopP(const Json& v, absl::string_view field) {
  if (v.is_null()) return absl::OkStatus();
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1) {
    return FieldError(field, "must be a number in [0, 1]");
  }
  params.top_p = v.get<double>();
  return absl::OkStatus();
}

absl::Status ParamsBuilder::MaxTokens(const Json& v, absl::string_view field) {
  if (v.is_null()) return absl::OkStatus();
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
    return FieldError(field, "must be a positive integer");
  }
  const int64_t value = v.get<int64_t>();
  if (params.max_tokens.has_value() && *params.max_tokens != value) {
    return FieldError(field, "conflicts with another max tokens field");
  }
  params.max_tokens = value;
  return absl::OkStatus();
}

absl::Status ParamsBuilder::Seed(const Json& v, absl::string_view field) {
  if (v.is_null()) return absl::OkStatus();
  if (!v.is_number_integer()) return FieldError(field, "must be an integer");
  params.seed = v.get<int64_t>();
  return absl::OkStatus();
}

absl::Status ParamsBuilder::Stop(const Json& v, absl::string_view field) {
  if (v.is_null()) return absl::OkStatus();
  if (v.is_string()) {
    params.stop.push_back(v.get<std::string>());
    return absl::OkStatus();
  }
  if (!v.is_array()) {
    return FieldError(field, "must be a string or an array of strings");
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) {
      return FieldError(absl::StrCat(field, "[", i, "]"), "must be a string");
    }
    params.stop.push_back(v[i].get<std::string>());
  }
  return absl::OkStatus();
}

void ParamsBuilder::JsonText(const Json& v, std::string* out) {
  out->clear();
  if (!v.is_null()) internal::AppendCanonicalJson(out, v);
}

void ParamsBuilder::Finish() {
  if (!folded.empty()) extra[kFoldedKey] = folded;
  params.extra_json.clear();
  if (!extra.empty()) params.extra_json = Canonical(extra);
}

bool IsTransportOnlyKey(absl::string_view key) {
  return key == "stream" || key == "stream_options" || key == "user" ||
         key == "metadata" || key == "store";
}

std::optional<absl::Status> ReadSharedTopLevel(const std::string& key,
                                               const Json& v,
                                               ParamsBuilder* pb) {
  if (IsTransportOnlyKey(key)) return absl::OkStatus();
  if (key == kApiMarkerKey || key == kFoldedKey) {
    return FieldError(key, "is reserved by promptcache");
  }
  if (key == "temperature") return pb->Temperature(v, key);
  if (key == "top_p") return pb->TopP(v, key);
  if (key == "max_tokens") return pb->MaxTokens(v, key);
  return std::nullopt;
}

bool IsNamedParam(absl::string_view key) {
  return key == "temperature" || key == "top_p" || key == "max_tokens" ||
         key == "stop" || key == "seed" || key == "tools" ||
         key == "tool_choice" || key == "response_format";
}

ExtraParts SplitExtra(const std::string& extra_json) {
  ExtraParts parts;
  if (extra_json.empty()) return parts;
  Json extra = ParseOrNull(extra_json);
  if (!extra.is_object()) return parts;
  for (auto& [key, value] : extra.items()) {
    if (key == kFoldedKey) {
      if (!value.is_array()) continue;
      for (const Json& index : value) {
        if (index.is_number_unsigned())
          parts.folded.insert(index.get<size_t>());
      }
    } else if (key == kApiMarkerKey && value == kApiMarkerCompletions) {
      parts.completions_marker = true;
    } else if (!IsTransportOnlyKey(key) && !IsNamedParam(key)) {
      parts.top[key] = value;
    }
  }
  return parts;
}

std::vector<absl::string_view> Utf8Chunks(absl::string_view text,
                                          size_t chunk_bytes) {
  std::vector<absl::string_view> out;
  chunk_bytes = std::max<size_t>(chunk_bytes, 1);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = std::min(text.size(), start + chunk_bytes);
    // Back up to a character boundary, but take at least one character.
    while (end < text.size() && end > start &&
           (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
      --end;
    }
    if (end == start) {
      end = start + 1;
      while (end < text.size() &&
             (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
        ++end;
      }
    }
    out.push_back(text.substr(start, end - start));
    start = end;
  }
  return out;
}

void AppendData(std::string* out, const Json& data) {
  absl::StrAppend(out, "data: ", Dump(data), "\n\n");
}

void AppendEvent(std::string* out, absl::string_view event, const Json& data) {
  absl::StrAppend(out, "event: ", event, "\ndata: ", Dump(data), "\n\n");
}

std::string ErrorMessage(const Json& payload, absl::string_view fallback) {
  if (payload.is_object()) {
    auto it = payload.find("error");
    if (it != payload.end()) {
      if (it->is_string()) return it->get<std::string>();
      if (it->is_object()) {
        auto msg = it->find("message");
        if (msg != it->end() && msg->is_string())
          return msg->get<std::string>();
        return Dump(*it);
      }
    }
    auto msg = payload.find("message");
    if (msg != payload.end() && msg->is_string())
      return msg->get<std::string>();
  }
  return std::string(fallback);
}

std::string ToOpenAiFinish(const std::string& reason) {
  if (reason == "end_turn" || reason == "stop_sequence") return "stop";
  if (reason == "max_tokens") return "length";
  if (reason == "tool_use") return "tool_calls";
  if (reason == "refusal") return "content_filter";
  return reason;
}

std::string ToAnthropicStop(const std::string& reason) {
  if (reason == "stop") return "end_turn";
  if (reason == "length") return "max_tokens";
  if (reason == "tool_calls" || reason == "function_call") return "tool_use";
  if (reason == "content_filter") return "refusal";
  return reason;
}

}  // namespace detail

namespace {

using detail::Json;

// A line longer than this is not a real SSE stream; stops memory growth.
constexpr size_t kMaxPendingBytes = size_t{64} << 20;

// Each provider's wire format: one row per Api, so that adding a provider
// is one row (and its functions in its own file), not a case in every call.
struct Codec {
  const char* name;
  const char* path;
  const char* id_prefix;
  absl::StatusOr<ParsedCall> (*parse_request)(absl::string_view body);
  std::string (*render_request)(const Request& request, bool stream,
                                int64_t default_max_tokens);
  absl::StatusOr<Response> (*parse_response)(absl::string_view body);
  std::string (*render_response)(const Response& answer,
                                 absl::string_view model, absl::string_view id,
                                 int64_t created_unix);
  std::string (*render_sse)(const Response& answer, absl::string_view model,
                            absl::string_view id, int64_t created_unix,
                            bool include_usage, size_t chunk_bytes);
  std::unique_ptr<detail::StreamHandler> (*stream_handler)();
};

// OpenAI's chat and legacy completions formats differ by a flag.
template <bool kCompletions>
constexpr Codec OpenAiCodec(const char* name, const char* path,
                            const char* id_prefix) {
  return {
      name,
      path,
      id_prefix,
      [](absl::string_view body) {
        return detail::ParseOpenAiRequest(kCompletions, body);
      },
      [](const Request& request, bool stream, int64_t) {
        return detail::RenderOpenAiRequest(kCompletions, request, stream);
      },
      [](absl::string_view body) {
        return detail::ParseOpenAiResponse(kCompletions, body);
      },
      [](const Response& answer, absl::string_view model, absl::string_view id,
         int64_t created_unix) {
        return detail::RenderOpenAiResponse(kCompletions, answer, model, id,
                                            created_unix);
      },
      [](const Response& answer, absl::string_view model, absl::string_view id,
         int64_t created_unix, bool include_usage, size_t chunk_bytes) {
        return detail::RenderOpenAiSse(kCompletions, answer, model, id,
                                       created_unix, include_usage,
                                       chunk_bytes);
      },
      [] { return detail::MakeOpenAiHandler(kCompletions); },
  };
}

constexpr Codec kAnthropicCodec = {
    "anthropic.messages",
    "/v1/messages",
    "msg_pc",
    &detail::ParseAnthropicRequest,
    &detail::RenderAnthropicRequest,
    &detail::ParseAnthropicResponse,
    &detail::RenderAnthropicResponse,
    [](const Response& answer, absl::string_view model, absl::string_view id,
       int64_t /*created_unix*/, bool include_usage, size_t chunk_bytes) {
      return detail::RenderAnthropicSse(answer, model, id, include_usage,
                                        chunk_bytes);
    },
    &detail::MakeAnthropicHandler,
};

const Codec& CodecOf(Api api) {
  static constexpr Codec kOpenAiChat =
      OpenAiCodec<false>("openai.chat", "/v1/chat/completions", "chatcmpl-pc");
  static constexpr Codec kOpenAiCompletions =
      OpenAiCodec<true>("openai.completions", "/v1/completions", "cmpl-pc");
  switch (api) {
    case Api::kOpenAiChat:
      return kOpenAiChat;
    case Api::kOpenAiCompletions:
      return kOpenAiCompletions;
    case Api::kAnthropicMessages:
      return kAnthropicCodec;
  }
  return kOpenAiChat;  // not reached: every Api has a row
}

}  // namespace

const char* ApiName(Api api) { return CodecOf(api).name; }
const char* ApiPath(Api api) { return CodecOf(api).path; }
const char* ResponseIdPrefix(Api api) { return CodecOf(api).id_prefix; }

absl::StatusOr<ParsedCall> ParseRequestBody(Api api, absl::string_view body) {
  return CodecOf(api).parse_request(body);
}

std::string RenderRequestBody(Api api, const Request& request, bool stream,
                              int64_t default_max_tokens) {
  return CodecOf(api).render_request(request, stream, default_max_tokens);
}

absl::StatusOr<Response> ParseResponseBody(Api api, absl::string_view body) {
  return CodecOf(api).parse_response(body);
}

std::string RenderResponseBody(Api api, const Response& answer,
                               absl::string_view model, absl::string_view id,
                               int64_t created_unix) {
  return CodecOf(api).render_response(answer, model, id, created_unix);
}

std::string RenderSse(Api api, const Response& answer, absl::string_view model,
                      absl::string_view id, int64_t created_unix,
                      bool include_usage, size_t chunk_bytes) {
  return CodecOf(api).render_sse(answer, model, id, created_unix, include_usage,
                                 chunk_bytes);
}

struct SseAssembler::State {
  std::unique_ptr<detail::StreamHandler> handler;
  absl::Status error;
  // Bytes of an unfinished line.
  std::string pending;
  // The event being read.
  detail::SseEvent event;
  bool has_data = false;

  // One complete line, without its terminator.
  absl::Status Line(absl::string_view line) {
    if (line.empty()) {
      // A blank line dispatches the event, if it had any data.
      if (!has_data && event.event.empty()) return absl::OkStatus();
      detail::SseEvent ready = std::move(event);
      event = detail::SseEvent();
      has_data = false;
      return handler->OnEvent(ready);
    }
    if (line[0] == ':') return absl::OkStatus();  // comment / keep-alive
    absl::string_view field = line;
    absl::string_view value;
    if (size_t colon = line.find(':'); colon != absl::string_view::npos) {
      field = line.substr(0, colon);
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "event") {
      event.event = std::string(value);
    } else if (field == "data") {
      if (has_data) event.data.push_back('\n');
      event.data.append(value.data(), value.size());
      has_data = true;
    }
    // "id", "retry" and unknown fields do not matter here.
    return absl::OkStatus();
  }
};

SseAssembler::SseAssembler(Api api) : state_(std::make_unique<State>()) {
  state_->handler = CodecOf(api).stream_handler();
}

SseAssembler::~SseAssembler() = default;

absl::Status SseAssembler::Feed(absl::string_view bytes) {
  State& s = *state_;
  if (!s.error.ok()) return s.error;
  s.pending.append(bytes.data(), bytes.size());
  size_t start = 0;
  while (true) {
    const size_t nl = s.pending.find('\n', start);
    if (nl == std::string::npos) break;
    absl::string_view line(s.pending.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    absl::Status status;
    try {
      status = s.Line(line);
    } catch (const Json::exception& e) {
      // Handlers read leniently; this only catches a shape they missed.
      status = absl::InvalidArgumentError(
          absl::StrCat("malformed stream event: ", e.what()));
    }
    start = nl + 1;
    if (!status.ok()) {
      s.error = status;
      return status;
    }
  }
  s.pending.erase(0, start);
  if (s.pending.size() > kMaxPendingBytes) {
    s.error = absl::InvalidArgumentError(
        absl::StrCat("SSE line longer than ", kMaxPendingBytes, " bytes"));
    return s.error;
  }
  return absl::OkStatus();
}

bool SseAssembler::finished() const {
  return state_->error.ok() && state_->handler->finished();
}

absl::StatusOr<Response> SseAssembler::Finish() const {
  if (!state_->error.ok()) return state_->error;
  if (!state_->handler->finished()) {
    return absl::FailedPreconditionError(
        "stream ended before its terminal event: an incomplete answer");
  }
  return state_->handler->Finish();
}

std::string RenderErrorBody(Api api, int http_status, absl::string_view message,
                            absl::string_view param) {
  Json body;
  if (api == Api::kAnthropicMessages) {
    const char* type = "api_error";
    switch (http_status) {
      case 401:
        type = "authentication_error";
        break;
      case 403:
        type = "permission_error";
        break;
      case 404:
        type = "not_found_error";
        break;
      case 413:
        type = "request_too_large";
        break;
      case 429:
        type = "rate_limit_error";
        break;
      case 529:
        type = "overloaded_error";
        break;
      default:
        if (http_status >= 400 && http_status < 500) {
          type = "invalid_request_error";
        }
        break;
    }
    body = {{"type", "error"},
            {"error", {{"type", type}, {"message", std::string(message)}}}};
    return detail::Dump(body);
  }
  const char* type = "server_error";
  Json code = nullptr;
  switch (http_status) {
    case 401:
      type = "authentication_error";
      code = "invalid_api_key";
      break;
    case 403:
      type = "permission_error";
      break;
    case 404:
      // OpenAI's code for an unknown model (a 404 about the `model`
      // parameter); other 404s (no such endpoint) are plain not-found.
      type = "invalid_request_error";
      code = param == "model" ? Json("model_not_found") : Json("not_found");
      break;
    case 413:
      type = "invalid_request_error";
      code = "request_too_large";
      break;
    case 429:
      type = "rate_limit_error";
      code = "rate_limit_exceeded";
      break;
    default:
      if (http_status >= 400 && http_status < 500) {
        type = "invalid_request_error";
      }
      break;
  }
  body = {{"error",
           {{"message", std::string(message)},
            {"type", type},
            {"param", param.empty() ? Json(nullptr) : Json(std::string(param))},
            {"code", code}}}};
  return detail::Dump(body);
}

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    case absl::StatusCode::kUnavailable:
      return 502;
    default:
      return 500;
  }
}

}  // namespace promptcache::wire
