// Helpers shared by the provider wire formats (provider_format.cc,
// openai_format.cc, anthropic_format.cc). Not part of the public interface.
#ifndef PROMPTCACHE_SRC_HTTP_FORMAT_INTERNAL_H_
#define PROMPTCACHE_SRC_HTTP_FORMAT_INTERNAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "http/provider_format.h"
#include "nlohmann/json.hpp"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace promptcache::wire::detail {

using Json = nlohmann::json;

// extra_json key marking legacy Completions requests, so that a prompt and a
// chat turn with the same text get different keys. Never sent upstream.
inline constexpr char kApiMarkerKey[] = "api";
inline constexpr char kApiMarkerCompletions[] = "completions";
// extra_json key listing the indices of messages whose content is folded
// canonical JSON (a parts/blocks array, or a whole message object). It keeps
// such a message's key apart from a plain text that happens to spell the same
// JSON, and tells RenderRequestBody to send the JSON back as JSON. Never sent
// upstream.
inline constexpr char kFoldedKey[] = "pc_folded";

// InvalidArgument "<field>: <what>".
absl::Status FieldError(absl::string_view field, absl::string_view what);

// Deeper JSON is refused (real requests nest < 20 levels).
inline constexpr int kMaxJsonDepth = 64;

// False when `json` nests arrays/objects deeper than `max_depth` (a cheap
// scan before parsing).
bool NestingWithin(absl::string_view json, int max_depth);

// An answer one Response cannot replay faithfully (an OpenAI refusal or
// legacy function_call, Anthropic thinking blocks): its finish reason gets
// " (not cached: <why>)", which IsCompleteFinishReason rejects, so it is
// returned but never stored.
std::string NotCached(absl::string_view finish_reason, absl::string_view why);

// The end of a parsed answer: `finish` (a string or null, named `field` in
// errors) as the finish reason, marked NotCached(`uncached`) when that is
// non-empty, and the body's "usage" object read by `read_usage`.
absl::Status FinishAnswer(const Json& body, const Json* finish,
                          absl::string_view field, const std::string& uncached,
                          void (*read_usage)(const Json&, Usage*),
                          Response* out);

// A token count from a server, clamped to [0, 2^40].
int64_t TokenCount(const Json& value);

// Parses a request or response body that must be a JSON object.
absl::StatusOr<Json> ParseObjectBody(absl::string_view body);

// The required non-empty string "model" of a request body.
absl::StatusOr<std::string> RequiredModel(const Json& body);

// Canonical JSON text: sorted keys, no whitespace.
std::string Canonical(const Json& value);

// Compact JSON text that never throws on invalid UTF-8 (replaced by U+FFFD).
std::string Dump(const Json& value);

// Parses JSON text without throwing; null when it is not JSON.
Json ParseOrNull(absl::string_view text);

// Lenient accessors that never throw: `obj[key]` when `obj` is an object
// that has it, else null / `fallback` (also when the value has another type).
const Json& Field(const Json& obj, const char* key);
std::string Str(const Json& obj, const char* key,
                absl::string_view fallback = "");
int64_t Int(const Json& obj, const char* key, int64_t fallback = 0);

// Accumulates a request's parameters while the top-level keys are read.
struct ParamsBuilder {
  Params params;
  Json extra = Json::object();
  std::vector<size_t> folded;

  // Named numeric parameters with range checks (InvalidArgument naming
  // `field`). Null values mean "omitted".
  absl::Status Temperature(const Json& v, absl::string_view field);
  absl::Status TopP(const Json& v, absl::string_view field);
  absl::Status MaxTokens(const Json& v, absl::string_view field);
  absl::Status Seed(const Json& v, absl::string_view field);
  // A string or an array of strings.
  absl::Status Stop(const Json& v, absl::string_view field);
  // Any JSON value, stored as canonical text.
  static void JsonText(const Json& v, std::string* out);

  // Puts extra and folded into params.extra_json.
  void Finish();
};

// True for the top-level keys that never change the answer.
bool IsTransportOnlyKey(absl::string_view key);

// The top-level fields both APIs read alike: transport-only keys (ignored),
// promptcache's reserved names (refused), temperature, top_p, max_tokens.
// nullopt when `key` is none of them.
std::optional<absl::Status> ReadSharedTopLevel(const std::string& key,
                                               const Json& v,
                                               ParamsBuilder* pb);
// True for keys that have their own Params field.
bool IsNamedParam(absl::string_view key);

// Splits extra_json back into upstream top-level keys (markers removed) and
// the folded message indices.
struct ExtraParts {
  Json top = Json::object();
  std::set<size_t> folded;
  bool completions_marker = false;
};
ExtraParts SplitExtra(const std::string& extra_json);

// Splits `text` into pieces of at most `chunk_bytes` bytes (at least one
// whole character each) that never split a UTF-8 sequence. Empty text gives
// no pieces.
std::vector<absl::string_view> Utf8Chunks(absl::string_view text,
                                          size_t chunk_bytes);

// "data: <json>\n\n" and "event: <name>\ndata: <json>\n\n".
void AppendData(std::string* out, const Json& data);
void AppendEvent(std::string* out, absl::string_view event, const Json& data);

// The message of an {"error":{...}} payload or `fallback`.
std::string ErrorMessage(const Json& payload, absl::string_view fallback);

// Translations between the OpenAI and Anthropic finish reasons, for
// answers rendered in the other provider's format. Unknown reasons pass
// through.
std::string ToOpenAiFinish(const std::string& reason);
std::string ToAnthropicStop(const std::string& reason);

// One dispatched server-sent event.
struct SseEvent {
  std::string event;  // empty when the event had no "event:" field
  std::string data;   // data lines joined with "\n"
};

// Per-API logic of SseAssembler.
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  virtual absl::Status OnEvent(const SseEvent& event) = 0;
  virtual bool finished() const = 0;
  virtual absl::StatusOr<Response> Finish() const = 0;
};

// OpenAI formats (chat when !completions, legacy Completions otherwise).
absl::StatusOr<ParsedCall> ParseOpenAiRequest(bool completions,
                                              absl::string_view body);
std::string RenderOpenAiRequest(bool completions, const Request& request,
                                bool stream);
absl::StatusOr<Response> ParseOpenAiResponse(bool completions,
                                             absl::string_view body);
std::string RenderOpenAiResponse(bool completions, const Response& answer,
                                 absl::string_view model, absl::string_view id,
                                 int64_t created_unix);
std::string RenderOpenAiSse(bool completions, const Response& answer,
                            absl::string_view model, absl::string_view id,
                            int64_t created_unix, bool include_usage,
                            size_t chunk_bytes);
std::unique_ptr<StreamHandler> MakeOpenAiHandler(bool completions);

// Anthropic Messages.
absl::StatusOr<ParsedCall> ParseAnthropicRequest(absl::string_view body);
std::string RenderAnthropicRequest(const Request& request, bool stream,
                                   int64_t default_max_tokens);
absl::StatusOr<Response> ParseAnthropicResponse(absl::string_view body);
std::string RenderAnthropicResponse(const Response& answer,
                                    absl::string_view model,
                                    absl::string_view id, int64_t created_unix);
std::string RenderAnthropicSse(const Response& answer, absl::string_view model,
                               absl::string_view id, bool include_usage,
                               size_t chunk_bytes);
std::unique_ptr<StreamHandler> MakeAnthropicHandler();

}  // namespace promptcache::wire::detail

#endif  // PROMPTCACHE_SRC_HTTP_FORMAT_INTERNAL_H_
