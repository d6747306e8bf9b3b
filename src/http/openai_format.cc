// OpenAI Chat Completions and legacy Completions: request and response
// bodies, SSE rendering and assembly. Long (~700 lines) because both APIs
// of one provider share their field readers and tool-call handling here;
// each direction (parse, render, assemble) is a short function over them.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "http/format_internal.h"

namespace promptcache::wire::detail {
namespace {

// The message keys Message has fields for.
constexpr const char* kChatMessageKeys[] = {"role", "content", "name",
                                            "tool_call_id", "tool_calls"};

bool IsChatMessageKey(const std::string& key) {
  for (const char* known : kChatMessageKeys) {
    if (key == known) return true;
  }
  return false;
}

// A content array whose parts are all plain {"type":"text","text":...}.
bool AllPlainTextParts(const Json& parts) {
  for (const Json& part : parts) {
    if (!part.is_object() || Field(part, "type") != "text") {
      return false;
    }
    for (const auto& [key, value] : part.items()) {
      if (key != "type" && key != "text") return false;
    }
  }
  return true;
}

absl::Status OptionalString(const Json& m, const char* key,
                            absl::string_view prefix, std::string* out) {
  auto it = m.find(key);
  if (it == m.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) {
    return FieldError(absl::StrCat(prefix, ".", key), "must be a string");
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status ParseChatMessage(const Json& m, size_t i, ParamsBuilder* pb,
                              ParsedCall* call) {
  const std::string prefix = absl::StrCat("messages[", i, "]");
  if (!m.is_object()) return FieldError(prefix, "must be an object");
  auto role = m.find("role");
  if (role == m.end()) return FieldError(prefix + ".role", "required");
  if (!role->is_string() || role->get_ref<const std::string&>().empty()) {
    return FieldError(prefix + ".role", "must be a non-empty string");
  }
  Message msg;
  msg.role = role->get<std::string>();
  // Keys the Message cannot hold (refusal, audio, function_call, ...) fold
  // the whole message into content so that they still reach the key. Null
  // values mean absent (clients echo "refusal": null back).
  bool fold_whole = false;
  for (const auto& [key, value] : m.items()) {
    if (!IsChatMessageKey(key) && !value.is_null()) fold_whole = true;
  }
  if (fold_whole) {
    Json copy = Json::object();
    for (const auto& [key, value] : m.items()) {
      if (!value.is_null()) copy[key] = value;
    }
    msg.content = Canonical(copy);
    pb->folded.push_back(i);
    call->exact_only = true;
    call->request.messages.push_back(std::move(msg));
    return absl::OkStatus();
  }
  auto content = m.find("content");
  if (content != m.end() && !content->is_null()) {
    if (content->is_string()) {
      msg.content = content->get<std::string>();
    } else if (content->is_array()) {
      for (size_t k = 0; k < content->size(); ++k) {
        const Json& part = (*content)[k];
        const std::string part_field =
            absl::StrCat(prefix, ".content[", k, "]");
        if (!part.is_object())
          return FieldError(part_field, "must be an object");
        auto type = part.find("type");
        if (type == part.end() || !type->is_string()) {
          return FieldError(part_field + ".type", "must be a string");
        }
        if (*type == "text") {
          auto text = part.find("text");
          if (text == part.end() || !text->is_string()) {
            return FieldError(part_field + ".text", "must be a string");
          }
        }
      }
      // One text part is the same prompt as a string; several are not the
      // same as any one joined string, so they keep their own (exact) key.
      if (content->size() == 1 && AllPlainTextParts(*content)) {
        std::vector<std::string> texts;
        for (const Json& part : *content) {
          texts.push_back(part["text"].get<std::string>());
        }
        msg.content = absl::StrJoin(texts, "\n");
      } else {
        // Images, audio, files: the exact key sees them verbatim.
        msg.content = Canonical(*content);
        pb->folded.push_back(i);
        call->exact_only = true;
      }
    } else {
      return FieldError(prefix + ".content",
                        "must be a string, an array of content parts or null");
    }
  }
  if (absl::Status s = OptionalString(m, "name", prefix, &msg.name); !s.ok()) {
    return s;
  }
  if (absl::Status s =
          OptionalString(m, "tool_call_id", prefix, &msg.tool_call_id);
      !s.ok()) {
    return s;
  }
  auto tool_calls = m.find("tool_calls");
  if (tool_calls != m.end() && !tool_calls->is_null()) {
    if (!tool_calls->is_array()) {
      return FieldError(prefix + ".tool_calls", "must be an array");
    }
    if (!tool_calls->empty()) msg.tool_calls_json = Canonical(*tool_calls);
  }
  call->request.messages.push_back(std::move(msg));
  return absl::OkStatus();
}

absl::Status ParsePrompt(const Json& prompt, ParamsBuilder* pb,
                         ParsedCall* call) {
  Message msg;
  msg.role = "user";
  if (prompt.is_string()) {
    msg.content = prompt.get<std::string>();
  } else if (prompt.is_array()) {
    if (prompt.empty()) return FieldError("prompt", "must not be empty");
    if (prompt.size() == 1 && prompt[0].is_string()) {
      msg.content = prompt[0].get<std::string>();
    } else {
      // Several prompts get several choices; token arrays are not text.
      call->uncacheable_reason = "prompt holds several prompts or token arrays";
      msg.content = Canonical(prompt);
      pb->folded.push_back(0);
      call->exact_only = true;
    }
  } else {
    return FieldError("prompt", "must be a string or an array");
  }
  call->request.messages.push_back(std::move(msg));
  return absl::OkStatus();
}

absl::Status ParseTopLevel(bool completions, const std::string& key,
                           const Json& v, ParamsBuilder* pb, ParsedCall* call) {
  if (key == "stream") {
    if (v.is_null()) return absl::OkStatus();
    if (!v.is_boolean()) return FieldError(key, "must be a boolean");
    call->stream = v.get<bool>();
    return absl::OkStatus();
  }
  if (key == "stream_options") {
    if (v.is_null()) return absl::OkStatus();
    if (!v.is_object()) return FieldError(key, "must be an object");
    auto usage = v.find("include_usage");
    if (usage != v.end() && !usage->is_null()) {
      if (!usage->is_boolean()) {
        return FieldError("stream_options.include_usage", "must be a boolean");
      }
      call->include_usage = usage->get<bool>();
    }
    return absl::OkStatus();
  }
  if (std::optional<absl::Status> shared = ReadSharedTopLevel(key, v, pb)) {
    return *shared;
  }
  // The newer name of max_tokens: both mean the same answer.
  if (!completions && key == "max_completion_tokens") {
    return pb->MaxTokens(v, key);
  }
  if (key == "stop") return pb->Stop(v, key);
  if (key == "seed") return pb->Seed(v, key);
  if (key == "tools") {
    if (!v.is_null() && !v.is_array())
      return FieldError(key, "must be an array");
    if (!v.is_null() && !v.empty())
      ParamsBuilder::JsonText(v, &pb->params.tools_json);
    return absl::OkStatus();
  }
  if (key == "tool_choice") {
    if (!v.is_null() && !v.is_string() && !v.is_object()) {
      return FieldError(key, "must be a string or an object");
    }
    ParamsBuilder::JsonText(v, &pb->params.tool_choice_json);
    return absl::OkStatus();
  }
  if (key == "response_format") {
    if (!v.is_null() && !v.is_object())
      return FieldError(key, "must be an object");
    ParamsBuilder::JsonText(v, &pb->params.response_format_json);
    return absl::OkStatus();
  }
  if (key == "n") {
    if (v.is_null()) return absl::OkStatus();
    if (!v.is_number_integer() || v.get<int64_t>() < 1) {
      return FieldError(key, "must be a positive integer");
    }
    if (v.get<int64_t>() > 1) {
      call->uncacheable_reason = "n > 1 asks for several choices";
      pb->extra[key] = v;
    }
    return absl::OkStatus();  // n = 1 is the default
  }
  // Everything else may change the answer: into the key. Null means absent.
  if (v.is_null()) return absl::OkStatus();
  if (completions) {
    if (key == "logprobs") call->uncacheable_reason = "logprobs requested";
    if (key == "echo" && v == true) call->uncacheable_reason = "echo requested";
  } else {
    if (key == "logprobs" && v == true) {
      call->uncacheable_reason = "logprobs requested";
    }
    if (key == "top_logprobs") call->uncacheable_reason = "logprobs requested";
    if (key == "audio") call->uncacheable_reason = "audio output requested";
    if (key == "modalities" && v.is_array()) {
      for (const Json& modality : v) {
        if (modality == "audio") {
          call->uncacheable_reason = "audio output requested";
        }
      }
    }
  }
  pb->extra[key] = v;
  return absl::OkStatus();
}

Json UsageJson(const Usage& usage) {
  return {{"prompt_tokens", usage.input_tokens},
          {"completion_tokens", usage.output_tokens},
          {"total_tokens", usage.input_tokens + usage.output_tokens},
          {"prompt_tokens_details",
           {{"cached_tokens", usage.cached_input_tokens}}}};
}

void ReadUsage(const Json& usage, Usage* out) {
  if (!usage.is_object()) return;
  auto count = [](const Json& obj, const char* key) -> int64_t {
    auto it = obj.find(key);
    return it != obj.end() ? TokenCount(*it) : 0;
  };
  out->input_tokens = count(usage, "prompt_tokens");
  out->output_tokens = count(usage, "completion_tokens");
  auto details = usage.find("prompt_tokens_details");
  if (details != usage.end() && details->is_object()) {
    out->cached_input_tokens = count(*details, "cached_tokens");
  }
}

Json FinishJson(const Response& answer) {
  if (answer.finish_reason.empty()) return nullptr;
  return ToOpenAiFinish(answer.finish_reason);
}

// The tool calls of an answer as a JSON array (empty when none or broken).
Json ToolCalls(const Response& answer) {
  if (answer.tool_calls_json.empty()) return Json::array();
  Json calls = ParseOrNull(answer.tool_calls_json);
  return calls.is_array() ? calls : Json::array();
}

class OpenAiHandler : public StreamHandler {
 public:
  explicit OpenAiHandler(bool completions) : completions_(completions) {}

  absl::Status OnEvent(const SseEvent& event) override {
    if (finished_) return absl::OkStatus();
    if (event.data == "[DONE]") {
      finished_ = true;
      return absl::OkStatus();
    }
    Json data = ParseOrNull(event.data);
    if (event.event == "error") {
      return absl::UnavailableError(absl::StrCat(
          "upstream stream error: ", ErrorMessage(data, event.data)));
    }
    if (!data.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("stream chunk is not a JSON object: ", event.data));
    }
    if (auto err = data.find("error"); err != data.end() && !err->is_null()) {
      return absl::UnavailableError(absl::StrCat(
          "upstream stream error: ", ErrorMessage(data, event.data)));
    }
    if (auto usage = data.find("usage");
        usage != data.end() && usage->is_object()) {
      ReadUsage(*usage, &answer_.usage);
    }
    auto choices = data.find("choices");
    if (choices == data.end() || choices->is_null()) return absl::OkStatus();
    if (!choices->is_array()) {
      return absl::InvalidArgumentError(
          "stream chunk: choices is not an array");
    }
    for (const Json& choice : *choices) {
      if (!choice.is_object()) {
        return absl::InvalidArgumentError(
            "stream chunk: a choice is not an object");
      }
      // Only the first choice is an answer (n > 1 is never cached).
      if (Int(choice, "index") != 0) continue;
      if (auto finish = choice.find("finish_reason");
          finish != choice.end() && finish->is_string()) {
        answer_.finish_reason = finish->get<std::string>();
      }
      if (completions_) {
        if (auto text = choice.find("text");
            text != choice.end() && text->is_string()) {
          answer_.text += text->get_ref<const std::string&>();
        }
        continue;
      }
      auto delta = choice.find("delta");
      if (delta == choice.end() || !delta->is_object()) continue;
      for (const char* key : {"content", "refusal"}) {
        if (auto text = delta->find(key);
            text != delta->end() && text->is_string()) {
          answer_.text += text->get_ref<const std::string&>();
          if (std::string(key) == "refusal" &&
              !text->get_ref<const std::string&>().empty()) {
            uncached_ = "refusal";
          }
        }
      }
      if (auto legacy = delta->find("function_call");
          legacy != delta->end() && !legacy->is_null()) {
        uncached_ = "legacy function_call";
      }
      auto calls = delta->find("tool_calls");
      if (calls == delta->end() || !calls->is_array()) continue;
      for (const Json& call : *calls) {
        if (absl::Status s = MergeToolCall(call); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  bool finished() const override { return finished_; }

  absl::StatusOr<Response> Finish() const override {
    Response out = answer_;
    if (!uncached_.empty()) {
      out.finish_reason = NotCached(out.finish_reason, uncached_);
    }
    if (!calls_.empty()) {
      Json calls = Json::array();
      for (const auto& [index, call] : calls_) calls.push_back(call);
      out.tool_calls_json = Canonical(calls);
    }
    return out;
  }

 private:
  absl::Status MergeToolCall(const Json& delta) {
    if (!delta.is_object()) {
      return absl::InvalidArgumentError(
          "stream chunk: a tool call delta is not an object");
    }
    int64_t index = static_cast<int64_t>(calls_.size());
    if (auto it = delta.find("index"); it != delta.end()) {
      if (!it->is_number_integer()) {
        return absl::InvalidArgumentError(
            "stream chunk: tool_calls[].index is not an integer");
      }
      index = it->get<int64_t>();
    }
    auto [slot, inserted] = calls_.try_emplace(index);
    Json& call = slot->second;
    if (inserted) {
      call = {{"id", ""},
              {"type", "function"},
              {"function", {{"name", ""}, {"arguments", ""}}}};
    }
    if (auto id = delta.find("id"); id != delta.end() && id->is_string()) {
      call["id"] = *id;
    }
    if (auto type = delta.find("type");
        type != delta.end() && type->is_string()) {
      call["type"] = *type;
    }
    auto fn = delta.find("function");
    if (fn == delta.end() || !fn->is_object()) return absl::OkStatus();
    if (auto name = fn->find("name");
        name != fn->end() && name->is_string() && !name->empty()) {
      call["function"]["name"] = *name;
    }
    if (auto args = fn->find("arguments");
        args != fn->end() && args->is_string()) {
      call["function"]["arguments"] =
          call["function"]["arguments"].get<std::string>() +
          args->get<std::string>();
    }
    return absl::OkStatus();
  }

  const bool completions_;
  bool finished_ = false;
  Response answer_;
  std::string uncached_;  // why the answer cannot be replayed
  std::map<int64_t, Json> calls_;
};

}  // namespace

absl::StatusOr<ParsedCall> ParseOpenAiRequest(bool completions,
                                              absl::string_view body) {
  absl::StatusOr<Json> parsed = ParseObjectBody(body);
  if (!parsed.ok()) return parsed.status();
  const Json& j = *parsed;
  ParsedCall call;
  ParamsBuilder pb;
  absl::StatusOr<std::string> model = RequiredModel(j);
  if (!model.ok()) return model.status();
  call.request.model = *std::move(model);
  if (completions) {
    auto prompt = j.find("prompt");
    if (prompt == j.end() || prompt->is_null()) {
      return FieldError("prompt", "required");
    }
    if (absl::Status s = ParsePrompt(*prompt, &pb, &call); !s.ok()) return s;
  } else {
    auto messages = j.find("messages");
    if (messages == j.end() || messages->is_null()) {
      return FieldError("messages", "required");
    }
    if (!messages->is_array() || messages->empty()) {
      return FieldError("messages", "must be a non-empty array");
    }
    for (size_t i = 0; i < messages->size(); ++i) {
      if (absl::Status s = ParseChatMessage((*messages)[i], i, &pb, &call);
          !s.ok()) {
        return s;
      }
    }
  }
  const char* content_key = completions ? "prompt" : "messages";
  for (const auto& [key, value] : j.items()) {
    if (key == "model" || key == content_key) continue;
    if (absl::Status s = ParseTopLevel(completions, key, value, &pb, &call);
        !s.ok()) {
      return s;
    }
  }
  if (completions) pb.extra[kApiMarkerKey] = kApiMarkerCompletions;
  pb.Finish();
  call.request.params = std::move(pb.params);
  return call;
}

std::string RenderOpenAiRequest(bool completions, const Request& r,
                                bool stream) {
  ExtraParts extra = SplitExtra(r.params.extra_json);
  Json body = std::move(extra.top);
  body["model"] = r.model;
  if (completions) {
    if (r.messages.size() == 1 && extra.folded.count(0) > 0) {
      Json prompt = ParseOrNull(r.messages[0].content);
      body["prompt"] = prompt.is_null() ? Json(r.messages[0].content) : prompt;
    } else {
      std::vector<std::string> texts;
      for (const Message& m : r.messages) texts.push_back(m.content);
      body["prompt"] = absl::StrJoin(texts, "\n\n");
    }
  } else {
    Json messages = Json::array();
    for (size_t i = 0; i < r.messages.size(); ++i) {
      const Message& m = r.messages[i];
      Json folded = extra.folded.count(i) > 0 ? ParseOrNull(m.content) : Json();
      if (folded.is_object()) {  // the whole message was folded
        messages.push_back(std::move(folded));
        continue;
      }
      Json msg = {{"role", m.role}};
      if (folded.is_array()) {
        msg["content"] = std::move(folded);
      } else if (m.content.empty() && !m.tool_calls_json.empty()) {
        msg["content"] = nullptr;
      } else {
        msg["content"] = m.content;
      }
      if (!m.name.empty()) msg["name"] = m.name;
      if (!m.tool_call_id.empty()) msg["tool_call_id"] = m.tool_call_id;
      if (!m.tool_calls_json.empty()) {
        Json calls = ParseOrNull(m.tool_calls_json);
        if (!calls.is_null()) msg["tool_calls"] = std::move(calls);
      }
      messages.push_back(std::move(msg));
    }
    body["messages"] = std::move(messages);
  }
  const Params& p = r.params;
  if (p.temperature) body["temperature"] = *p.temperature;
  if (p.top_p) body["top_p"] = *p.top_p;
  if (p.max_tokens) {
    // OpenAI's reasoning models accept only the newer name; compatible
    // servers may know only the older one.
    const bool newer = !completions && r.backend == "openai";
    body[newer ? "max_completion_tokens" : "max_tokens"] = *p.max_tokens;
  }
  if (!p.stop.empty()) body["stop"] = p.stop;
  if (p.seed) body["seed"] = *p.seed;
  for (auto [text, key] :
       {std::pair<const std::string*, const char*>{&p.tools_json, "tools"},
        {&p.tool_choice_json, "tool_choice"},
        {&p.response_format_json, "response_format"}}) {
    if (text->empty()) continue;
    Json value = ParseOrNull(*text);
    if (!value.is_null()) body[key] = std::move(value);
  }
  if (stream) {
    body["stream"] = true;
    if (!completions) body["stream_options"] = {{"include_usage", true}};
  }
  return Dump(body);
}

absl::StatusOr<Response> ParseOpenAiResponse(bool completions,
                                             absl::string_view body) {
  absl::StatusOr<Json> parsed = ParseObjectBody(body);
  if (!parsed.ok()) return parsed.status();
  const Json& j = *parsed;
  auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty()) {
    if (auto err = j.find("error"); err != j.end() && !err->is_null()) {
      return absl::InvalidArgumentError(
          absl::StrCat("body is an error: ", ErrorMessage(j, "")));
    }
    return FieldError("choices", "must be a non-empty array");
  }
  const Json& choice = (*choices)[0];
  if (!choice.is_object()) return FieldError("choices[0]", "must be an object");
  Response out;
  std::string uncached;  // why this answer cannot be replayed
  if (completions) {
    auto text = choice.find("text");
    if (text != choice.end() && !text->is_null()) {
      if (!text->is_string()) {
        return FieldError("choices[0].text", "must be a string");
      }
      out.text = text->get<std::string>();
    }
  } else {
    auto message = choice.find("message");
    if (message == choice.end() || !message->is_object()) {
      return FieldError("choices[0].message", "must be an object");
    }
    auto content = message->find("content");
    if (content != message->end() && !content->is_null()) {
      if (!content->is_string()) {
        return FieldError("choices[0].message.content",
                          "must be a string or null");
      }
      out.text = content->get<std::string>();
    }
    // A refusal replaces the content: it is what the caller must see.
    if (auto refusal = message->find("refusal");
        out.text.empty() && refusal != message->end() && refusal->is_string()) {
      out.text = refusal->get<std::string>();
      uncached = "refusal";
    }
    if (auto legacy = message->find("function_call");
        legacy != message->end() && !legacy->is_null()) {
      uncached = "legacy function_call";
    }
    auto calls = message->find("tool_calls");
    if (calls != message->end() && !calls->is_null()) {
      if (!calls->is_array()) {
        return FieldError("choices[0].message.tool_calls", "must be an array");
      }
      if (!calls->empty()) out.tool_calls_json = Canonical(*calls);
    }
  }
  auto finish = choice.find("finish_reason");
  if (absl::Status st =
          FinishAnswer(j, finish == choice.end() ? nullptr : &*finish,
                       "choices[0].finish_reason", uncached, &ReadUsage, &out);
      !st.ok()) {
    return st;
  }
  return out;
}

std::string RenderOpenAiResponse(bool completions, const Response& answer,
                                 absl::string_view model, absl::string_view id,
                                 int64_t created_unix) {
  Json choice = {{"index", 0},
                 {"logprobs", nullptr},
                 {"finish_reason", FinishJson(answer)}};
  if (completions) {
    choice["text"] = answer.text;
  } else {
    Json calls = ToolCalls(answer);
    Json message = {{"role", "assistant"}, {"refusal", nullptr}};
    message["content"] = answer.text.empty() && !calls.empty()
                             ? Json(nullptr)
                             : Json(answer.text);
    if (!calls.empty()) message["tool_calls"] = std::move(calls);
    choice["message"] = std::move(message);
  }
  Json body = {{"id", std::string(id)},
               {"object", completions ? "text_completion" : "chat.completion"},
               {"created", created_unix},
               {"model", std::string(model)},
               {"choices", Json::array({std::move(choice)})},
               {"usage", UsageJson(answer.usage)},
               {"system_fingerprint", nullptr}};
  return Dump(body);
}

std::string RenderOpenAiSse(bool completions, const Response& answer,
                            absl::string_view model, absl::string_view id,
                            int64_t created_unix, bool include_usage,
                            size_t chunk_bytes) {
  std::string out;
  const Json base = {
      {"id", std::string(id)},
      {"object", completions ? "text_completion" : "chat.completion.chunk"},
      {"created", created_unix},
      {"model", std::string(model)},
      {"system_fingerprint", nullptr}};
  // A chunk for choice 0. With include_usage OpenAI sends "usage": null on
  // every chunk but the last.
  auto chunk = [&](Json choice_fields, const Json& finish) {
    Json c = base;
    choice_fields["index"] = 0;
    choice_fields["logprobs"] = nullptr;
    choice_fields["finish_reason"] = finish;
    c["choices"] = Json::array({std::move(choice_fields)});
    if (include_usage) c["usage"] = nullptr;
    AppendData(&out, c);
  };
  if (completions) {
    for (absl::string_view piece : Utf8Chunks(answer.text, chunk_bytes)) {
      chunk({{"text", std::string(piece)}}, nullptr);
    }
    chunk({{"text", ""}}, FinishJson(answer));
  } else {
    chunk({{"delta",
            {{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}}}},
          nullptr);
    for (absl::string_view piece : Utf8Chunks(answer.text, chunk_bytes)) {
      chunk({{"delta", {{"content", std::string(piece)}}}}, nullptr);
    }
    const Json calls = ToolCalls(answer);
    for (size_t i = 0; i < calls.size(); ++i) {
      const Json& call = calls[i];
      const Json& fn = Field(call, "function");
      Json start = {
          {"index", i},
          {"id", Str(call, "id")},
          {"type", Str(call, "type", "function")},
          {"function", {{"name", Str(fn, "name")}, {"arguments", ""}}}};
      chunk({{"delta", {{"tool_calls", Json::array({start})}}}}, nullptr);
      const std::string args = Str(fn, "arguments");
      for (absl::string_view piece : Utf8Chunks(args, chunk_bytes)) {
        Json part = {{"index", i},
                     {"function", {{"arguments", std::string(piece)}}}};
        chunk({{"delta", {{"tool_calls", Json::array({part})}}}}, nullptr);
      }
    }
    chunk({{"delta", Json::object()}}, FinishJson(answer));
  }
  if (include_usage) {
    Json last = base;
    last["choices"] = Json::array();
    last["usage"] = UsageJson(answer.usage);
    AppendData(&out, last);
  }
  out.append("data: [DONE]\n\n");
  return out;
}

std::unique_ptr<StreamHandler> MakeOpenAiHandler(bool completions) {
  return std::make_unique<OpenAiHandler>(completions);
}

}  // namespace promptcache::wire::detail
