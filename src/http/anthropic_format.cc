// Anthropic Messages: request and response bodies, SSE rendering and
// assembly (one provider's wire format in one place, hence ~640 lines). Text of
// several text blocks in an answer is concatenated with no separator (the
// blocks of one answer are pieces of one text, e.g. around citations), the same
// in ParseResponseBody and in the stream assembler.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "http/format_internal.h"

namespace promptcache::wire::detail {
namespace {

// cache_control marks prompt-cache breakpoints: it never changes the answer.
// It is removed only where Anthropic defines it (on content blocks, blocks
// nested in tool results, and tool definitions): a key of that name inside a
// tool's input or schema is content and stays.
Json StripCacheControl(Json value) {
  if (value.is_array()) {
    for (Json& item : value) item = StripCacheControl(std::move(item));
  } else if (value.is_object()) {
    value.erase("cache_control");
    auto content = value.find("content");
    if (content != value.end() && content->is_array()) {
      *content = StripCacheControl(std::move(*content));
    }
  }
  return value;
}

// Checks a block array; true when every block is a plain text block.
absl::StatusOr<bool> CheckBlocks(const Json& blocks, absl::string_view field) {
  bool all_text = true;
  for (size_t k = 0; k < blocks.size(); ++k) {
    const Json& block = blocks[k];
    const std::string block_field = absl::StrCat(field, "[", k, "]");
    if (!block.is_object()) return FieldError(block_field, "must be an object");
    auto type = block.find("type");
    if (type == block.end() || !type->is_string()) {
      return FieldError(block_field + ".type", "must be a string");
    }
    if (*type != "text") {
      all_text = false;
      continue;
    }
    auto text = block.find("text");
    if (text == block.end() || !text->is_string()) {
      return FieldError(block_field + ".text", "must be a string");
    }
    for (const auto& [key, value] : block.items()) {
      // Citations and other annotations make it more than text.
      if (key != "type" && key != "text" && key != "cache_control" &&
          !value.is_null()) {
        all_text = false;
      }
    }
  }
  return all_text;
}

std::string JoinTexts(const Json& blocks, absl::string_view separator) {
  std::vector<std::string> texts;
  for (const Json& block : blocks) {
    texts.push_back(block["text"].get<std::string>());
  }
  return absl::StrJoin(texts, separator);
}

// Reads string or block-array content into `msg`; folds non-text blocks.
absl::Status ReadContent(const Json& content, absl::string_view field,
                         absl::string_view separator, size_t index,
                         ParamsBuilder* pb, ParsedCall* call, Message* msg) {
  if (content.is_string()) {
    msg->content = content.get<std::string>();
    return absl::OkStatus();
  }
  if (!content.is_array()) {
    return FieldError(field, "must be a string or an array of blocks");
  }
  absl::StatusOr<bool> all_text = CheckBlocks(content, field);
  if (!all_text.ok()) return all_text.status();
  // One text block is the same prompt as a string; several are not the
  // same as any one joined string, so they keep their own (exact) key.
  if (*all_text && content.size() == 1) {
    msg->content = JoinTexts(content, separator);
  } else {
    msg->content = Canonical(StripCacheControl(content));
    pb->folded.push_back(index);
    call->exact_only = true;
  }
  return absl::OkStatus();
}

absl::Status ParseMessage(const Json& m, size_t i, size_t index,
                          ParamsBuilder* pb, ParsedCall* call) {
  const std::string prefix = absl::StrCat("messages[", i, "]");
  if (!m.is_object()) return FieldError(prefix, "must be an object");
  auto role = m.find("role");
  if (role == m.end()) return FieldError(prefix + ".role", "required");
  if (!role->is_string() || role->get_ref<const std::string&>().empty()) {
    return FieldError(prefix + ".role", "must be a non-empty string");
  }
  // "system" is reserved for the top-level system prompt's message.
  if (*role == "system") {
    return FieldError(prefix + ".role",
                      "must not be \"system\" (use the top-level system)");
  }
  Message msg;
  msg.role = role->get<std::string>();
  auto content = m.find("content");
  if (content == m.end() || content->is_null()) {
    return FieldError(prefix + ".content", "required");
  }
  bool fold_whole = false;
  for (const auto& [key, value] : m.items()) {
    if (key != "role" && key != "content" && !value.is_null()) {
      fold_whole = true;
    }
  }
  if (fold_whole) {
    msg.content = Canonical(StripCacheControl(m));
    pb->folded.push_back(index);
    call->exact_only = true;
  } else if (absl::Status s = ReadContent(*content, prefix + ".content", "\n\n",
                                          index, pb, call, &msg);
             !s.ok()) {
    return s;
  }
  call->request.messages.push_back(std::move(msg));
  return absl::OkStatus();
}

absl::Status ParseTopLevel(const std::string& key, const Json& v,
                           ParamsBuilder* pb, ParsedCall* call) {
  if (key == "stream") {
    if (v.is_null()) return absl::OkStatus();
    if (!v.is_boolean()) return FieldError(key, "must be a boolean");
    call->stream = v.get<bool>();
    return absl::OkStatus();
  }
  if (std::optional<absl::Status> shared = ReadSharedTopLevel(key, v, pb)) {
    return *shared;
  }
  if (key == "stop_sequences") {
    if (!v.is_null() && !v.is_array()) {
      return FieldError(key, "must be an array of strings");
    }
    return pb->Stop(v, key);
  }
  if (key == "tools") {
    if (!v.is_null() && !v.is_array())
      return FieldError(key, "must be an array");
    if (!v.is_null() && !v.empty()) {
      ParamsBuilder::JsonText(StripCacheControl(v), &pb->params.tools_json);
    }
    return absl::OkStatus();
  }
  if (key == "tool_choice") {
    if (!v.is_null() && !v.is_object())
      return FieldError(key, "must be an object");
    ParamsBuilder::JsonText(v, &pb->params.tool_choice_json);
    return absl::OkStatus();
  }
  // OpenAI names the Messages API does not have; they would collide with
  // Params fields in the key.
  if (IsNamedParam(key)) {
    return FieldError(key, "is not an Anthropic Messages field");
  }
  if (v.is_null()) return absl::OkStatus();
  // top_k, thinking, service_tier, ...: may change the answer.
  pb->extra[key] = v;
  return absl::OkStatus();
}

int64_t Count(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() ? TokenCount(*it) : 0;
}

// Anthropic usage counts the uncached prompt only; Usage the whole prompt.
void ReadUsage(const Json& usage, Usage* out) {
  if (!usage.is_object()) return;
  const int64_t read = Count(usage, "cache_read_input_tokens");
  const int64_t write = Count(usage, "cache_creation_input_tokens");
  out->input_tokens = Count(usage, "input_tokens") + read + write;
  out->cached_input_tokens = read;
  out->cache_write_input_tokens = write;
  if (usage.contains("output_tokens")) {
    out->output_tokens = Count(usage, "output_tokens");
  }
}

Json UsageJson(const Usage& usage, bool with_output) {
  const int64_t uncached =
      std::max<int64_t>(0, usage.input_tokens - usage.cached_input_tokens -
                               usage.cache_write_input_tokens);
  Json out = {{"input_tokens", uncached},
              {"cache_creation_input_tokens", usage.cache_write_input_tokens},
              {"cache_read_input_tokens", usage.cached_input_tokens}};
  out["output_tokens"] = with_output ? usage.output_tokens : 1;
  return out;
}

// An OpenAI-shaped tool call from a tool_use block's parts.
Json ToolCall(const Json& id, const Json& name, const std::string& arguments) {
  return {{"id", id.is_string() ? id : Json("")},
          {"type", "function"},
          {"function",
           {{"name", name.is_string() ? name : Json("")},
            {"arguments", arguments}}}};
}

// A tool_use block from an OpenAI-shaped tool call.
Json ToolUseBlock(const Json& call) {
  const Json& fn = Field(call, "function");
  Json input = ParseOrNull(Str(fn, "arguments"));
  if (!input.is_object()) input = Json::object();
  return {{"type", "tool_use"},
          {"id", Str(call, "id")},
          {"name", Str(fn, "name")},
          {"input", std::move(input)}};
}

Json ToolCalls(const Response& answer) {
  if (answer.tool_calls_json.empty()) return Json::array();
  Json calls = ParseOrNull(answer.tool_calls_json);
  return calls.is_array() ? calls : Json::array();
}

Json StopJson(const Response& answer) {
  if (answer.finish_reason.empty()) return nullptr;
  return ToAnthropicStop(answer.finish_reason);
}

// OpenAI-shaped tools and tool_choice (from a Request built for another
// provider) in the Messages shape; Anthropic-shaped ones pass through.
Json AnthropicTools(Json tools) {
  if (!tools.is_array()) return tools;
  for (Json& tool : tools) {
    if (!tool.is_object() || !tool.contains("function")) continue;
    const Json fn = tool["function"];
    Json converted = {
        {"name", Str(fn, "name")},
        {"input_schema", fn.contains("parameters") ? fn["parameters"]
                                                   : Json{{"type", "object"}}}};
    if (fn.contains("description"))
      converted["description"] = fn["description"];
    tool = std::move(converted);
  }
  return tools;
}

Json AnthropicToolChoice(const Json& choice) {
  if (choice == "auto") return {{"type", "auto"}};
  if (choice == "required") return {{"type", "any"}};
  if (choice == "none") return {{"type", "none"}};
  if (choice.is_object() && Str(choice, "type") == "function") {
    return {{"type", "tool"}, {"name", Str(Field(choice, "function"), "name")}};
  }
  return choice;
}

class AnthropicHandler : public StreamHandler {
 public:
  absl::Status OnEvent(const SseEvent& event) override {
    if (finished_) return absl::OkStatus();
    Json data = ParseOrNull(event.data);
    std::string type = event.event;
    if (data.is_object() && data.contains("type") && data["type"].is_string()) {
      type = data["type"].get<std::string>();
    }
    if (type == "error" || event.event == "error") {
      return absl::UnavailableError(absl::StrCat(
          "upstream stream error: ", ErrorMessage(data, event.data)));
    }
    if (type == "ping") return absl::OkStatus();
    if (!data.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stream event '", event.event, "' data is not a JSON object"));
    }
    if (type == "message_start") {
      ReadUsage(Field(Field(data, "message"), "usage"), &usage_);
    } else if (type == "content_block_start") {
      const Json& block = Field(data, "content_block");
      Block& b = blocks_[Int(data, "index")];
      b.type = Str(block, "type");
      if (b.type == "text") {
        b.text = Str(block, "text");
      } else if (b.type != "tool_use") {
        uncached_ = absl::StrCat(b.type, " blocks");
      }
      if (b.type == "tool_use") {
        b.id = Field(block, "id");
        b.name = Field(block, "name");
        const Json& input = Field(block, "input");
        if (input.is_object() && !input.empty()) b.initial_input = input;
      }
    } else if (type == "content_block_delta") {
      const Json& delta = Field(data, "delta");
      auto it = blocks_.find(Int(data, "index"));
      if (it == blocks_.end()) {
        return absl::InvalidArgumentError(
            "stream: content_block_delta for a block that was not started");
      }
      const std::string delta_type = Str(delta, "type");
      if (delta_type == "text_delta") {
        it->second.text += Str(delta, "text");
      } else if (delta_type == "input_json_delta") {
        it->second.partial_json += Str(delta, "partial_json");
      }
      // thinking_delta, signature_delta, citations_delta: not answer text.
    } else if (type == "message_delta") {
      const Json& delta = Field(data, "delta");
      if (auto stop = delta.find("stop_reason");
          stop != delta.end() && stop->is_string()) {
        stop_reason_ = stop->get<std::string>();
      }
      if (auto usage = data.find("usage");
          usage != data.end() && usage->is_object()) {
        // Cumulative counts; input counts appear here only in newer APIs.
        if (usage->contains("input_tokens")) {
          ReadUsage(*usage, &usage_);
        } else {
          usage_.output_tokens = Count(*usage, "output_tokens");
        }
      }
    } else if (type == "message_stop") {
      finished_ = true;
    }
    // content_block_stop and unknown events carry nothing to keep.
    return absl::OkStatus();
  }

  bool finished() const override { return finished_; }

  absl::StatusOr<Response> Finish() const override {
    Response out;
    out.finish_reason =
        uncached_.empty() ? stop_reason_ : NotCached(stop_reason_, uncached_);
    out.usage = usage_;
    Json calls = Json::array();
    for (const auto& [index, b] : blocks_) {
      if (b.type == "text") {
        out.text += b.text;
      } else if (b.type == "tool_use") {
        Json input = b.initial_input;
        if (!b.partial_json.empty()) {
          input = ParseOrNull(b.partial_json);
          if (input.is_null()) {
            return absl::InvalidArgumentError(absl::StrCat(
                "stream: tool_use block ", index, " input is not JSON"));
          }
        }
        calls.push_back(ToolCall(b.id, b.name, Canonical(input)));
      }
    }
    if (!calls.empty()) out.tool_calls_json = Canonical(calls);
    return out;
  }

 private:
  struct Block {
    std::string type;
    std::string text;
    Json id;
    Json name;
    Json initial_input = Json::object();
    std::string partial_json;
  };

  bool finished_ = false;
  std::map<int64_t, Block> blocks_;
  std::string stop_reason_;
  std::string uncached_;  // why the answer cannot be replayed
  Usage usage_;
};

}  // namespace

absl::StatusOr<ParsedCall> ParseAnthropicRequest(absl::string_view body) {
  absl::StatusOr<Json> parsed = ParseObjectBody(body);
  if (!parsed.ok()) return parsed.status();
  const Json& j = *parsed;
  ParsedCall call;
  ParamsBuilder pb;
  absl::StatusOr<std::string> model = RequiredModel(j);
  if (!model.ok()) return model.status();
  call.request.model = *std::move(model);
  auto messages = j.find("messages");
  if (messages == j.end() || messages->is_null()) {
    return FieldError("messages", "required");
  }
  if (!messages->is_array() || messages->empty()) {
    return FieldError("messages", "must be a non-empty array");
  }
  auto max_tokens = j.find("max_tokens");
  if (max_tokens == j.end() || max_tokens->is_null()) {
    return FieldError("max_tokens", "required");
  }
  // The system prompt becomes a leading "system" message.
  if (auto system = j.find("system"); system != j.end() && !system->is_null()) {
    Message msg;
    msg.role = "system";
    if (absl::Status s =
            ReadContent(*system, "system", "\n", 0, &pb, &call, &msg);
        !s.ok()) {
      return s;
    }
    if (!msg.content.empty()) call.request.messages.push_back(std::move(msg));
  }
  const size_t offset = call.request.messages.size();
  for (size_t i = 0; i < messages->size(); ++i) {
    if (absl::Status s =
            ParseMessage((*messages)[i], i, offset + i, &pb, &call);
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "model" || key == "messages" || key == "system") continue;
    if (absl::Status s = ParseTopLevel(key, value, &pb, &call); !s.ok()) {
      return s;
    }
  }
  pb.Finish();
  call.request.params = std::move(pb.params);
  return call;
}

std::string RenderAnthropicRequest(const Request& r, bool stream,
                                   int64_t default_max_tokens) {
  ExtraParts extra = SplitExtra(r.params.extra_json);
  Json body = std::move(extra.top);
  body["model"] = r.model;
  // Leading system/developer messages become the system prompt.
  size_t first = 0;
  std::vector<std::string> system;
  Json system_blocks;
  for (; first < r.messages.size(); ++first) {
    const Message& m = r.messages[first];
    if (m.role != "system" && m.role != "developer") break;
    if (extra.folded.count(first) > 0) {
      Json blocks = ParseOrNull(m.content);
      if (blocks.is_array()) {
        system_blocks = std::move(blocks);
        continue;
      }
    }
    system.push_back(m.content);
  }
  if (!system_blocks.is_null() && system.empty()) {
    body["system"] = std::move(system_blocks);
  } else if (!system.empty()) {
    body["system"] = absl::StrJoin(system, "\n\n");
  }
  Json messages = Json::array();
  for (size_t i = first; i < r.messages.size(); ++i) {
    const Message& m = r.messages[i];
    Json folded = extra.folded.count(i) > 0 ? ParseOrNull(m.content) : Json();
    if (folded.is_object()) {
      messages.push_back(std::move(folded));
      continue;
    }
    if (folded.is_array()) {
      messages.push_back({{"role", m.role}, {"content", std::move(folded)}});
      continue;
    }
    // OpenAI-style tool turns, from Requests built for any provider.
    if (m.role == "tool") {
      messages.push_back(
          {{"role", "user"},
           {"content", Json::array({{{"type", "tool_result"},
                                     {"tool_use_id", m.tool_call_id},
                                     {"content", m.content}}})}});
      continue;
    }
    Json calls = m.tool_calls_json.empty() ? Json::array()
                                           : ParseOrNull(m.tool_calls_json);
    if (calls.is_array() && !calls.empty()) {
      Json blocks = Json::array();
      if (!m.content.empty()) {
        blocks.push_back({{"type", "text"}, {"text", m.content}});
      }
      for (const Json& call : calls) blocks.push_back(ToolUseBlock(call));
      messages.push_back({{"role", m.role}, {"content", std::move(blocks)}});
      continue;
    }
    messages.push_back({{"role", m.role}, {"content", m.content}});
  }
  body["messages"] = std::move(messages);
  const Params& p = r.params;
  body["max_tokens"] = p.max_tokens.value_or(default_max_tokens);
  if (p.temperature) body["temperature"] = *p.temperature;
  if (p.top_p) body["top_p"] = *p.top_p;
  if (!p.stop.empty()) body["stop_sequences"] = p.stop;
  // seed and response_format have no Messages equivalent.
  if (!p.tools_json.empty()) {
    Json tools = ParseOrNull(p.tools_json);
    if (!tools.is_null()) body["tools"] = AnthropicTools(std::move(tools));
  }
  if (!p.tool_choice_json.empty()) {
    Json choice = ParseOrNull(p.tool_choice_json);
    if (!choice.is_null()) body["tool_choice"] = AnthropicToolChoice(choice);
  }
  if (stream) body["stream"] = true;
  return Dump(body);
}

absl::StatusOr<Response> ParseAnthropicResponse(absl::string_view body) {
  absl::StatusOr<Json> parsed = ParseObjectBody(body);
  if (!parsed.ok()) return parsed.status();
  const Json& j = *parsed;
  if (Str(j, "type") == "error") {
    return absl::InvalidArgumentError(
        absl::StrCat("body is an error: ", ErrorMessage(j, "")));
  }
  auto content = j.find("content");
  if (content == j.end() || !content->is_array()) {
    return FieldError("content", "must be an array");
  }
  Response out;
  std::string uncached;  // why this answer cannot be replayed
  Json calls = Json::array();
  for (size_t k = 0; k < content->size(); ++k) {
    const Json& block = (*content)[k];
    const std::string field = absl::StrCat("content[", k, "]");
    if (!block.is_object()) return FieldError(field, "must be an object");
    const Json& type = Field(block, "type");
    if (type == "text") {
      auto text = block.find("text");
      if (text == block.end() || !text->is_string()) {
        return FieldError(field + ".text", "must be a string");
      }
      out.text += text->get_ref<const std::string&>();
    } else if (type == "tool_use") {
      auto input = block.find("input");
      if (input == block.end() || !input->is_object()) {
        return FieldError(field + ".input", "must be an object");
      }
      calls.push_back(ToolCall(Field(block, "id"), Field(block, "name"),
                               Canonical(*input)));
    }
    // thinking, redacted_thinking, server tool blocks: a replay without them
    // would break the client's next turn, so such answers are not stored.
    else {
      uncached = absl::StrCat(
          type.is_string() ? type.get<std::string>() : "unknown", " blocks");
    }
  }
  if (!calls.empty()) out.tool_calls_json = Canonical(calls);
  auto stop = j.find("stop_reason");
  if (absl::Status st = FinishAnswer(j, stop == j.end() ? nullptr : &*stop,
                                     "stop_reason", uncached, &ReadUsage, &out);
      !st.ok()) {
    return st;
  }
  return out;
}

std::string RenderAnthropicResponse(const Response& answer,
                                    absl::string_view model,
                                    absl::string_view id,
                                    int64_t /*created_unix*/) {
  Json content = Json::array();
  if (!answer.text.empty()) {
    content.push_back({{"type", "text"}, {"text", answer.text}});
  }
  for (const Json& call : ToolCalls(answer)) {
    content.push_back(ToolUseBlock(call));
  }
  Json body = {{"id", std::string(id)},
               {"type", "message"},
               {"role", "assistant"},
               {"model", std::string(model)},
               {"content", std::move(content)},
               {"stop_reason", StopJson(answer)},
               {"stop_sequence", nullptr},
               {"usage", UsageJson(answer.usage, true)}};
  return Dump(body);
}

std::string RenderAnthropicSse(const Response& answer, absl::string_view model,
                               absl::string_view id, bool /*include_usage*/,
                               size_t chunk_bytes) {
  std::string out;
  AppendEvent(&out, "message_start",
              {{"type", "message_start"},
               {"message",
                {{"id", std::string(id)},
                 {"type", "message"},
                 {"role", "assistant"},
                 {"model", std::string(model)},
                 {"content", Json::array()},
                 {"stop_reason", nullptr},
                 {"stop_sequence", nullptr},
                 {"usage", UsageJson(answer.usage, false)}}}});
  AppendEvent(&out, "ping", {{"type", "ping"}});
  int64_t index = 0;
  auto block = [&](const Json& start, const std::string& text,
                   const char* delta_type, const char* delta_key) {
    AppendEvent(&out, "content_block_start",
                {{"type", "content_block_start"},
                 {"index", index},
                 {"content_block", start}});
    for (absl::string_view piece : Utf8Chunks(text, chunk_bytes)) {
      AppendEvent(
          &out, "content_block_delta",
          {{"type", "content_block_delta"},
           {"index", index},
           {"delta", {{"type", delta_type}, {delta_key, std::string(piece)}}}});
    }
    AppendEvent(&out, "content_block_stop",
                {{"type", "content_block_stop"}, {"index", index}});
    ++index;
  };
  if (!answer.text.empty()) {
    block({{"type", "text"}, {"text", ""}}, answer.text, "text_delta", "text");
  }
  for (const Json& call : ToolCalls(answer)) {
    Json start = ToolUseBlock(call);
    const std::string input = Dump(start["input"]);
    start["input"] = Json::object();
    block(start, input, "input_json_delta", "partial_json");
  }
  AppendEvent(
      &out, "message_delta",
      {{"type", "message_delta"},
       {"delta",
        {{"stop_reason", StopJson(answer)}, {"stop_sequence", nullptr}}},
       {"usage", {{"output_tokens", answer.usage.output_tokens}}}});
  AppendEvent(&out, "message_stop", {{"type", "message_stop"}});
  return out;
}

std::unique_ptr<StreamHandler> MakeAnthropicHandler() {
  return std::make_unique<AnthropicHandler>();
}

}  // namespace promptcache::wire::detail
