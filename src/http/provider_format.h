// The wire formats of the provider APIs promptcache speaks: OpenAI Chat
// Completions (/v1/chat/completions), OpenAI legacy Completions
// (/v1/completions) and Anthropic Messages (/v1/messages).
//
// Used by the HTTP upstream clients (Request -> body, body -> Response) and
// by the proxy (client body -> Request, Response -> body or SSE replay,
// upstream SSE -> assembled Response). Pure functions: no I/O.
#ifndef PROMPTCACHE_SRC_HTTP_PROVIDER_FORMAT_H_
#define PROMPTCACHE_SRC_HTTP_PROVIDER_FORMAT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "promptcache/provider_api.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace promptcache::wire {

// kOpenAiChat (POST /v1/chat/completions), kOpenAiCompletions (POST
// /v1/completions, legacy "prompt"), kAnthropicMessages (POST /v1/messages).
using Api = ::promptcache::ProviderApi;

// "openai.chat", "openai.completions", "anthropic.messages".
const char* ApiName(Api api);
// The endpoint's path under the server root, e.g. "/v1/chat/completions".
const char* ApiPath(Api api);
// How the provider's own response ids begin ("chatcmpl-", "msg_"), with
// "pc" after it for ids the cache makes.
const char* ResponseIdPrefix(Api api);

// What a client's request body means to the cache.
struct ParsedCall {
  // backend and ns are left empty: the caller fills them. Every field that
  // can change the answer is in `request` (unknown fields go to
  // params.extra_json), so equal Requests mean equal answers.
  Request request;
  // "stream": true.
  bool stream = false;
  // OpenAI "stream_options": {"include_usage": true}: a replayed stream
  // ends with a usage chunk.
  bool include_usage = false;
  // Non-empty when the call cannot be answered by one cached Response
  // (OpenAI n > 1, logprobs, audio output, ...): the proxy forwards it
  // without reading or writing the cache. Names the reason.
  std::string uncacheable_reason;
  // The request holds content the text-only Message cannot represent as
  // prose (images, documents, tool results as blocks, ...). It is folded
  // into Message::content verbatim (canonical JSON), so the exact key stays
  // correct, but the semantic tier must not be used for it.
  bool exact_only = false;
};

// Parses a client's request body for `api`. Errors are InvalidArgument with
// a message naming the field, e.g. "messages[2].role: must be a string", or
// "body is not valid JSON: ..." for bad JSON, "model: required" for a
// missing field.
//
// Mapping choices (they decide which requests share a key):
// - Top-level null values mean "omitted"; OpenAI n = 1 is the default and
//   is dropped; max_completion_tokens is max_tokens.
// - OpenAI content parts that are all text join with "\n"; Anthropic text
//   blocks join with "\n" (system) and "\n\n" (messages); cache_control is
//   ignored everywhere (blocks and tools).
// - Anything else (images, tool blocks, unknown message keys) is folded as
//   canonical JSON into content, with exact_only set and the message's index
//   listed in extra_json "pc_folded" (so a plain text spelling the same JSON
//   has another key, and RenderRequestBody sends the JSON back as JSON).
// - Legacy Completions requests carry "api":"completions" in extra_json so
//   their keys differ from chat turns with the same text.
// - Anthropic: the system prompt is a leading "system" message; messages
//   with role "system" are rejected.
// "api" and "pc_folded" are rejected as top-level fields; RenderRequestBody
// never sends them upstream.
absl::StatusOr<ParsedCall> ParseRequestBody(Api api, absl::string_view body);

// The body an upstream client sends for `request` (non-streaming unless
// `stream`). Anthropic requires max_tokens: when the request has none,
// `default_max_tokens` is sent. OpenAI chat sends max_tokens as
// max_completion_tokens when request.backend is "openai" (its reasoning
// models accept only that), as max_tokens otherwise. Anthropic: leading
// system/developer messages become "system"; OpenAI-style tool turns and
// tools become tool_use/tool_result blocks and Messages tools; seed and
// response_format have no equivalent and are not sent.
std::string RenderRequestBody(Api api, const Request& request, bool stream,
                              int64_t default_max_tokens = 4096);

// Parses an upstream's 2xx non-streamed response body. Usage is taken from
// the body (OpenAI prompt_tokens / completion_tokens /
// prompt_tokens_details.cached_tokens; Anthropic input_tokens +
// cache_read_input_tokens + cache_creation_input_tokens as input_tokens,
// with the cached/cache_write parts in their own fields). Tool calls are
// stored in the OpenAI tool_calls shape (Anthropic tool_use blocks are
// converted: id, name, input -> function.arguments as JSON text). Several
// Anthropic text blocks concatenate with no separator (as SseAssembler
// does); thinking blocks are not answer text. An OpenAI refusal with no
// content becomes the text. Errors: InvalidArgument naming what is missing
// or malformed.
absl::StatusOr<Response> ParseResponseBody(Api api, absl::string_view body);

// Renders `answer` as the provider's non-streamed response body for
// `model`, as the official SDKs parse it. `id` is the response id to use
// (e.g. "chatcmpl-pc-<entry key>"); `created_unix` the "created" time.
std::string RenderResponseBody(Api api, const Response& answer,
                               absl::string_view model, absl::string_view id,
                               int64_t created_unix);

// Renders `answer` as a complete server-sent-event stream in the
// provider's chunk format (text in chunks of at most `chunk_bytes`, never
// splitting a UTF-8 sequence; tool calls; the finish reason; usage when
// `include_usage` (always for Anthropic, which reports usage in
// message_start/message_delta); the terminator "data: [DONE]" for OpenAI,
// "event: message_stop" for Anthropic).
std::string RenderSse(Api api, const Response& answer, absl::string_view model,
                      absl::string_view id, int64_t created_unix,
                      bool include_usage, size_t chunk_bytes = 64);

// Assembles an upstream's SSE stream into the complete Response.
class SseAssembler {
 public:
  explicit SseAssembler(Api api);
  ~SseAssembler();
  SseAssembler(const SseAssembler&) = delete;
  SseAssembler& operator=(const SseAssembler&) = delete;

  // Feeds bytes as received; events may be split anywhere, lines end in
  // "\n" or "\r\n". Errors: InvalidArgument for an event whose data is not
  // the expected JSON, Unavailable for an "error" event from the provider
  // (message quoted). After an error the assembler stays failed.
  absl::Status Feed(absl::string_view bytes);
  // True once the terminal event was seen ("data: [DONE]" for OpenAI,
  // "message_stop" for Anthropic).
  bool finished() const;
  // The assembled answer (text, tool calls in the OpenAI shape, finish
  // reason, usage when the stream reported it). FailedPrecondition when
  // the stream has not finished: an aborted stream is never an answer.
  absl::StatusOr<Response> Finish() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// An error body in the provider's own format:
//   OpenAI:    {"error":{"message":...,"type":...,"param":...,"code":...}}
//   Anthropic: {"type":"error","error":{"type":...,"message":...}}
// with the type that provider uses for `http_status` (400
// invalid_request_error, 401 authentication_error, 404 not_found_error /
// model_not_found, 413 request_too_large, 429 rate_limit_error, 5xx
// api_error / server_error, 529 overloaded_error...). `param` (OpenAI only)
// may be empty.
std::string RenderErrorBody(Api api, int http_status, absl::string_view message,
                            absl::string_view param = "");

// The HTTP status for a promptcache error: InvalidArgument 400,
// Unauthenticated 401, PermissionDenied 403, NotFound 404,
// ResourceExhausted 429, DeadlineExceeded 504, Unavailable 502,
// FailedPrecondition 400, others 500.
int HttpStatusFor(const absl::Status& status);

}  // namespace promptcache::wire

#endif  // PROMPTCACHE_SRC_HTTP_PROVIDER_FORMAT_H_
