// A model request as promptcache sees it: who asks (namespace), whom (backend,
// model), what (messages) and how (answer-changing parameters).
#ifndef PROMPTCACHE_REQUEST_H_
#define PROMPTCACHE_REQUEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace promptcache {

// One turn of a conversation.
struct Message {
  // "system", "developer", "user", "assistant" or "tool". Must be non-empty.
  std::string role;
  // The text of the turn; may be empty for an assistant turn that only calls
  // tools. Must be valid UTF-8.
  std::string content;
  // Optional participant name (OpenAI `name`).
  std::string name;
  // For role "tool": the id of the tool call this message answers.
  std::string tool_call_id;
  // For role "assistant": the tool calls it made, as a JSON array text
  // (OpenAI `tool_calls` shape). Empty means none.
  std::string tool_calls_json;
};

// Parameters that change the answer. An omitted (nullopt / empty) parameter
// is canonicalized to its documented default, so leaving it out and passing
// the default give the same cache key.
struct Params {
  // Default when omitted: 1.0 (the OpenAI, Anthropic and Gemini default).
  std::optional<double> temperature;
  // Default when omitted: 1.0.
  std::optional<double> top_p;
  // Default when omitted: no limit (the backend's own maximum).
  std::optional<int64_t> max_tokens;
  // Stop sequences; order and duplicates do not matter. Default: none.
  std::vector<std::string> stop;
  // Default when omitted: none.
  std::optional<int64_t> seed;
  // JSON texts; empty means omitted. Key order and whitespace inside them do
  // not change the cache key.
  std::string tools_json;
  std::string tool_choice_json;
  std::string response_format_json;
  // Any other answer-changing parameters as a JSON object text, e.g.
  // {"frequency_penalty":0.5}. Transport-only keys ("stream",
  // "stream_options", "user", "metadata", "store") are ignored.
  std::string extra_json;
};

struct Request {
  // The tenant. Entries of one namespace are never served to another. Empty
  // means "default".
  std::string ns;
  // Which service answers: e.g. "openai", "anthropic", "google", "mistral",
  // "deepseek", "self-hosted". Must be non-empty.
  std::string backend;
  // Model name as the backend knows it. Must be non-empty.
  std::string model;
  // At least one message.
  std::vector<Message> messages;
  Params params;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_REQUEST_H_
