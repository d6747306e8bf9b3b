// Provider wire formats: request parsing (what reaches the cache key),
// response bodies, SSE rendering and assembly, error bodies.
#include "http/provider_format.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "promptcache/keys.h"

namespace promptcache::wire {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;

constexpr Api kAllApis[] = {Api::kOpenAiChat, Api::kOpenAiCompletions,
                            Api::kAnthropicMessages};

ParsedCall Parse(Api api, const std::string& body) {
  absl::StatusOr<ParsedCall> call = ParseRequestBody(api, body);
  EXPECT_TRUE(call.ok()) << call.status() << "\nbody: " << body;
  return call.ok() ? *call : ParsedCall();
}

// The canonical request (whose hash is the exact key) of a parsed call.
std::string Key(ParsedCall call) {
  call.request.backend = "openai";
  absl::StatusOr<CanonicalizedRequest> c = Canonicalize(call.request);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? c->canonical : "";
}

std::string KeyOf(Api api, const std::string& body) {
  return Key(Parse(api, body));
}

// Expects InvalidArgument whose message contains `what`.
void ExpectError(Api api, const std::string& body, const std::string& what) {
  absl::StatusOr<ParsedCall> call = ParseRequestBody(api, body);
  ASSERT_FALSE(call.ok()) << "accepted: " << body;
  EXPECT_EQ(call.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(call.status().message()), HasSubstr(what))
      << "body: " << body;
}

std::string Chat(
    const std::string& extra_fields,
    const std::string& messages = R"([{"role":"user","content":"Hi"}])") {
  return R"({"model":"gpt-4o","messages":)" + messages + extra_fields + "}";
}

std::string Claude(
    const std::string& extra_fields,
    const std::string& messages = R"([{"role":"user","content":"Hi"}])") {
  return R"({"model":"claude-sonnet-4-5","max_tokens":100,"messages":)" +
         messages + extra_fields + "}";
}

// ---------------------------------------------------------------------------
// OpenAI Chat requests

TEST(OpenAiChatRequest, ParsesMessagesAndParams) {
  const ParsedCall call = Parse(Api::kOpenAiChat, R"({
    "model": "gpt-4o",
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Weather?", "name": "bob"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    ],
    "temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "stop": "END",
    "seed": 7, "tools": [{"type": "function", "function": {"name": "weather"}}],
    "tool_choice": "auto", "response_format": {"type": "json_object"},
    "frequency_penalty": 0.5, "logit_bias": {"50256": -100},
    "stream": true, "stream_options": {"include_usage": true},
    "user": "u-1", "store": false, "metadata": {"a": "b"}
  })");
  const Request& r = call.request;
  EXPECT_EQ(r.model, "gpt-4o");
  EXPECT_TRUE(r.backend.empty());
  EXPECT_TRUE(r.ns.empty());
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "Be brief.");
  EXPECT_EQ(r.messages[1].name, "bob");
  EXPECT_EQ(r.messages[2].role, "assistant");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(Json::parse(r.messages[2].tool_calls_json)[0]["id"], "call_1");
  EXPECT_EQ(r.messages[3].tool_call_id, "call_1");
  EXPECT_EQ(r.messages[3].content, "sunny");
  EXPECT_EQ(r.params.temperature, 0.2);
  EXPECT_EQ(r.params.top_p, 0.9);
  EXPECT_EQ(r.params.max_tokens, 50);
  EXPECT_EQ(r.params.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.params.seed, 7);
  EXPECT_EQ(Json::parse(r.params.tools_json)[0]["function"]["name"], "weather");
  EXPECT_EQ(r.params.tool_choice_json, "\"auto\"");
  EXPECT_EQ(r.params.response_format_json, R"({"type":"json_object"})");
  EXPECT_EQ(
      Json::parse(r.params.extra_json),
      Json::parse(R"({"frequency_penalty":0.5,"logit_bias":{"50256":-100}})"));
  EXPECT_TRUE(call.stream);
  EXPECT_TRUE(call.include_usage);
  EXPECT_TRUE(call.uncacheable_reason.empty());
  EXPECT_FALSE(call.exact_only);
}

TEST(OpenAiChatRequest, StopArrayAndMaxCompletionTokens) {
  const ParsedCall call =
      Parse(Api::kOpenAiChat,
            Chat(R"(,"stop":["a","b"],"max_completion_tokens":20)"));
  EXPECT_EQ(call.request.params.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(call.request.params.max_tokens, 20);
  EXPECT_EQ(KeyOf(Api::kOpenAiChat, Chat(R"(,"max_completion_tokens":20)")),
            KeyOf(Api::kOpenAiChat, Chat(R"(,"max_tokens":20)")));
  EXPECT_FALSE(call.stream);
  EXPECT_FALSE(call.include_usage);
}

TEST(OpenAiChatRequest, TransportOnlyFieldsDoNotChangeTheKey) {
  const std::string base = KeyOf(Api::kOpenAiChat, Chat(""));
  for (const char* extra :
       {R"(,"stream":true)", R"(,"stream":false)",
        R"(,"stream":true,"stream_options":{"include_usage":true})",
        R"(,"user":"someone")", R"(,"metadata":{"trace":"x"})",
        R"(,"store":true)", R"(,"n":1)", R"(,"temperature":null)",
        R"(,"frequency_penalty":null)", R"(,"temperature":1)",
        R"(,"top_p":1.0)"}) {
    EXPECT_EQ(KeyOf(Api::kOpenAiChat, Chat(extra)), base) << extra;
  }
}

TEST(OpenAiChatRequest, AnswerChangingFieldsChangeTheKey) {
  std::vector<std::string> keys = {KeyOf(Api::kOpenAiChat, Chat(""))};
  for (const char* extra :
       {R"(,"temperature":0)", R"(,"top_p":0.5)", R"(,"max_tokens":10)",
        R"(,"stop":"x")", R"(,"seed":1)", R"(,"frequency_penalty":0.5)",
        R"(,"presence_penalty":0.5)", R"(,"logit_bias":{"1":5})",
        R"(,"reasoning_effort":"high")", R"(,"parallel_tool_calls":false)",
        R"(,"service_tier":"flex")",
        R"(,"prediction":{"type":"content","content":"x"})",
        R"(,"response_format":{"type":"json_object"})",
        R"(,"tools":[{"type":"function","function":{"name":"f"}}])",
        R"(,"tool_choice":"none")", R"(,"verbosity":"low")"}) {
    const std::string key = KeyOf(Api::kOpenAiChat, Chat(extra));
    for (const std::string& other : keys) EXPECT_NE(key, other) << extra;
    keys.push_back(key);
  }
  // A different model or text too.
  EXPECT_NE(
      KeyOf(
          Api::kOpenAiChat,
          R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]})"),
      keys[0]);
  EXPECT_NE(
      KeyOf(Api::kOpenAiChat, Chat("", R"([{"role":"user","content":"Hi!"}])")),
      keys[0]);
}

TEST(OpenAiChatRequest, OneTextPartIsAStringSeveralKeepTheirOwnKey) {
  EXPECT_EQ(
      KeyOf(
          Api::kOpenAiChat,
          Chat("",
               R"([{"role":"user","content":[{"type":"text","text":"a"}]}])")),
      KeyOf(Api::kOpenAiChat, Chat("", R"([{"role":"user","content":"a"}])")));
  const ParsedCall call =
      Parse(Api::kOpenAiChat,
            Chat("", R"([{"role":"user","content":[{"type":"text","text":"a"},)"
                     R"({"type":"text","text":"b"}]}])"));
  ASSERT_EQ(call.request.messages.size(), 1u);
  // The model sees "ab"-like concatenation, not any one joined string: the
  // parts keep an exact key of their own.
  EXPECT_TRUE(call.exact_only);
  for (const char* joined : {R"("a\nb")", R"("ab")", R"("a b")"}) {
    EXPECT_NE(Key(call),
              KeyOf(Api::kOpenAiChat,
                    Chat("", absl::StrCat(R"([{"role":"user","content":)",
                                          joined, "}]"))));
  }
}

std::string ImageMessage(const std::string& url) {
  return R"([{"role":"user","content":[{"type":"text","text":"What is this?"},)"
         R"({"type":"image_url","image_url":{"url":")" +
         url + R"("}}]}])";
}

TEST(OpenAiChatRequest, ImagesAreFoldedAndExactOnly) {
  const ParsedCall a =
      Parse(Api::kOpenAiChat, Chat("", ImageMessage("https://x/cat.png")));
  const ParsedCall b =
      Parse(Api::kOpenAiChat, Chat("", ImageMessage("https://x/dog.png")));
  EXPECT_TRUE(a.exact_only);
  EXPECT_TRUE(a.uncacheable_reason.empty());
  ASSERT_EQ(a.request.messages.size(), 1u);
  const Json folded = Json::parse(a.request.messages[0].content);
  ASSERT_TRUE(folded.is_array());
  EXPECT_EQ(folded[1]["image_url"]["url"], "https://x/cat.png");
  EXPECT_NE(Key(a), Key(b));
  EXPECT_EQ(Key(a), KeyOf(Api::kOpenAiChat,
                          Chat("", ImageMessage("https://x/cat.png"))));
  // A plain text that spells the same JSON is a different request.
  ParsedCall spelled = a;
  spelled.request.params.extra_json.clear();
  EXPECT_NE(Key(spelled), Key(a));
  Json text_message = Json::array(
      {{{"role", "user"}, {"content", a.request.messages[0].content}}});
  const ParsedCall as_text =
      Parse(Api::kOpenAiChat, Chat("", text_message.dump()));
  EXPECT_FALSE(as_text.exact_only);
  EXPECT_NE(Key(as_text), Key(a));
}

TEST(OpenAiChatRequest, UnknownMessageKeysFoldTheMessage) {
  const ParsedCall audio =
      Parse(Api::kOpenAiChat,
            Chat("", R"([{"role":"user","content":"Hi"},{"role":"assistant",)"
                     R"("content":null,"audio":{"id":"audio_1"}},)"
                     R"({"role":"user","content":"again"}])"));
  EXPECT_TRUE(audio.exact_only);
  EXPECT_EQ(Json::parse(audio.request.messages[1].content)["audio"]["id"],
            "audio_1");
  // Null-valued keys are absent: echoing a response's "refusal": null back
  // does not fold.
  const ParsedCall refusal_null =
      Parse(Api::kOpenAiChat,
            Chat("", R"([{"role":"user","content":"Hi"},{"role":"assistant",)"
                     R"("content":"Hello","refusal":null},)"
                     R"({"role":"user","content":"again"}])"));
  EXPECT_FALSE(refusal_null.exact_only);
  EXPECT_EQ(refusal_null.request.messages[1].content, "Hello");
  EXPECT_EQ(Key(refusal_null),
            KeyOf(Api::kOpenAiChat,
                  Chat("", R"([{"role":"user","content":"Hi"},)"
                           R"({"role":"assistant","content":"Hello"},)"
                           R"({"role":"user","content":"again"}])")));
}

TEST(OpenAiChatRequest, UncacheableCalls) {
  for (const char* extra :
       {R"(,"n":2)", R"(,"logprobs":true)", R"(,"top_logprobs":3)",
        R"(,"modalities":["text","audio"])",
        R"(,"audio":{"voice":"alloy","format":"wav"})"}) {
    const ParsedCall call = Parse(Api::kOpenAiChat, Chat(extra));
    EXPECT_FALSE(call.uncacheable_reason.empty()) << extra;
    EXPECT_EQ(call.request.messages.size(), 1u) << "still parsed: " << extra;
  }
  EXPECT_THAT(Parse(Api::kOpenAiChat, Chat(R"(,"n":2)")).uncacheable_reason,
              HasSubstr("n > 1"));
  for (const char* extra :
       {R"(,"n":1)", R"(,"logprobs":false)", R"(,"modalities":["text"])"}) {
    EXPECT_TRUE(Parse(Api::kOpenAiChat, Chat(extra)).uncacheable_reason.empty())
        << extra;
  }
}

TEST(OpenAiChatRequest, Errors) {
  const Api api = Api::kOpenAiChat;
  ExpectError(api, "{", "body is not valid JSON");
  ExpectError(api, "", "body is not valid JSON");
  ExpectError(api, "[1]", "body: must be a JSON object");
  ExpectError(api, R"({"messages":[{"role":"user","content":"x"}]})",
              "model: required");
  ExpectError(api, R"({"model":5,"messages":[{"role":"user","content":"x"}]})",
              "model: must be a non-empty string");
  ExpectError(api, R"({"model":"","messages":[{"role":"user","content":"x"}]})",
              "model: must be a non-empty string");
  ExpectError(api, R"({"model":"m"})", "messages: required");
  ExpectError(api, R"({"model":"m","messages":[]})",
              "messages: must be a non-empty array");
  ExpectError(api, R"({"model":"m","messages":"hi"})",
              "messages: must be a non-empty array");
  ExpectError(api, Chat("", R"([{"role":"user","content":"x"},3])"),
              "messages[1]: must be an object");
  ExpectError(api, Chat("", R"([{"content":"x"}])"),
              "messages[0].role: required");
  ExpectError(api, Chat("", R"([{"role":7,"content":"x"}])"),
              "messages[0].role: must be a non-empty string");
  ExpectError(api, Chat("", R"([{"role":"","content":"x"}])"),
              "messages[0].role: must be a non-empty string");
  ExpectError(api, Chat("", R"([{"role":"user","content":5}])"),
              "messages[0].content: must be a string");
  ExpectError(api, Chat("", R"([{"role":"user","content":[5]}])"),
              "messages[0].content[0]: must be an object");
  ExpectError(api, Chat("", R"([{"role":"user","content":[{"text":"a"}]}])"),
              "messages[0].content[0].type: must be a string");
  ExpectError(api, Chat("", R"([{"role":"user","content":[{"type":"text"}]}])"),
              "messages[0].content[0].text: must be a string");
  ExpectError(api, Chat("", R"([{"role":"user","content":"x","name":1}])"),
              "messages[0].name: must be a string");
  ExpectError(api,
              Chat("", R"([{"role":"tool","content":"x","tool_call_id":1}])"),
              "messages[0].tool_call_id: must be a string");
  ExpectError(
      api, Chat("", R"([{"role":"assistant","content":"x","tool_calls":{}}])"),
      "messages[0].tool_calls: must be an array");
  ExpectError(api, Chat(R"(,"temperature":"hot")"),
              "temperature: must be a number");
  ExpectError(api, Chat(R"(,"temperature":-1)"),
              "temperature: must be a number");
  ExpectError(api, Chat(R"(,"top_p":1.5)"),
              "top_p: must be a number in [0, 1]");
  ExpectError(api, Chat(R"(,"max_tokens":0)"),
              "max_tokens: must be a positive");
  ExpectError(api, Chat(R"(,"max_tokens":1.5)"),
              "max_tokens: must be a positive");
  ExpectError(api, Chat(R"(,"max_completion_tokens":"9")"),
              "max_completion_tokens: must be a positive");
  ExpectError(api, Chat(R"(,"max_tokens":5,"max_completion_tokens":6)"),
              "conflicts");
  ExpectError(api, Chat(R"(,"stop":5)"), "stop: must be a string or an array");
  ExpectError(api, Chat(R"(,"stop":["a",1])"), "stop[1]: must be a string");
  ExpectError(api, Chat(R"(,"seed":"x")"), "seed: must be an integer");
  ExpectError(api, Chat(R"(,"tools":{})"), "tools: must be an array");
  ExpectError(api, Chat(R"(,"tool_choice":3)"),
              "tool_choice: must be a string");
  ExpectError(api, Chat(R"(,"response_format":"json")"),
              "response_format: must be an object");
  ExpectError(api, Chat(R"(,"stream":"yes")"), "stream: must be a boolean");
  ExpectError(api, Chat(R"(,"stream_options":{"include_usage":1})"),
              "stream_options.include_usage: must be a boolean");
  ExpectError(api, Chat(R"(,"stream_options":5)"),
              "stream_options: must be an object");
  ExpectError(api, Chat(R"(,"n":0)"), "n: must be a positive integer");
  ExpectError(api, Chat(R"(,"api":"completions")"), "api: is reserved");
  ExpectError(api, Chat(R"(,"pc_folded":[0])"), "pc_folded: is reserved");
}

// ---------------------------------------------------------------------------
// OpenAI legacy Completions requests

std::string Legacy(const std::string& prompt, const std::string& extra = "") {
  return R"({"model":"gpt-3.5-turbo-instruct","prompt":)" + prompt + extra +
         "}";
}

TEST(OpenAiCompletionsRequest, PromptBecomesOneUserMessage) {
  const ParsedCall call = Parse(
      Api::kOpenAiCompletions,
      Legacy(R"("Say hi")", R"(,"max_tokens":5,"suffix":"!","stream":true)"));
  ASSERT_EQ(call.request.messages.size(), 1u);
  EXPECT_EQ(call.request.messages[0].role, "user");
  EXPECT_EQ(call.request.messages[0].content, "Say hi");
  EXPECT_EQ(call.request.params.max_tokens, 5);
  EXPECT_TRUE(call.stream);
  const Json extra = Json::parse(call.request.params.extra_json);
  EXPECT_EQ(extra["api"], "completions");
  EXPECT_EQ(extra["suffix"], "!");
  EXPECT_TRUE(call.uncacheable_reason.empty());
  EXPECT_EQ(KeyOf(Api::kOpenAiCompletions, Legacy(R"(["Say hi"])")),
            KeyOf(Api::kOpenAiCompletions, Legacy(R"("Say hi")")));
}

TEST(OpenAiCompletionsRequest, KeyDiffersFromChatWithTheSameText) {
  const std::string legacy =
      KeyOf(Api::kOpenAiCompletions, R"({"model":"gpt-4o","prompt":"Hi"})");
  EXPECT_NE(legacy, KeyOf(Api::kOpenAiChat, Chat("")));
}

TEST(OpenAiCompletionsRequest, SeveralPromptsOrTokensAreUncacheable) {
  for (const char* prompt : {R"(["a","b"])", R"([1,2,3])", R"([[1,2],[3]])"}) {
    const ParsedCall call = Parse(Api::kOpenAiCompletions, Legacy(prompt));
    EXPECT_FALSE(call.uncacheable_reason.empty()) << prompt;
    EXPECT_TRUE(call.exact_only) << prompt;
  }
  EXPECT_FALSE(
      Parse(Api::kOpenAiCompletions, Legacy(R"("a")", R"(,"logprobs":2)"))
          .uncacheable_reason.empty());
  EXPECT_FALSE(
      Parse(Api::kOpenAiCompletions, Legacy(R"("a")", R"(,"echo":true)"))
          .uncacheable_reason.empty());
  EXPECT_FALSE(Parse(Api::kOpenAiCompletions, Legacy(R"("a")", R"(,"n":3)"))
                   .uncacheable_reason.empty());
  EXPECT_TRUE(
      Parse(Api::kOpenAiCompletions, Legacy(R"("a")", R"(,"echo":false)"))
          .uncacheable_reason.empty());
  EXPECT_TRUE(Parse(Api::kOpenAiCompletions,
                    Legacy(R"("a")", R"(,"logprobs":null,"best_of":2)"))
                  .uncacheable_reason.empty());
}

TEST(OpenAiCompletionsRequest, Errors) {
  const Api api = Api::kOpenAiCompletions;
  ExpectError(api, "nope", "body is not valid JSON");
  ExpectError(api, R"({"prompt":"x"})", "model: required");
  ExpectError(api, R"({"model":"m"})", "prompt: required");
  ExpectError(api, Legacy("[]"), "prompt: must not be empty");
  ExpectError(api, Legacy("5"), "prompt: must be a string or an array");
  ExpectError(api, Legacy(R"("x")", R"(,"temperature":"x")"), "temperature");
}

// ---------------------------------------------------------------------------
// Anthropic Messages requests

TEST(AnthropicRequest, ParsesSystemMessagesAndParams) {
  const ParsedCall call = Parse(Api::kAnthropicMessages, R"({
    "model": "claude-sonnet-4-5", "max_tokens": 1024,
    "system": "You are terse.",
    "messages": [{"role": "user", "content": "Hello"},
                 {"role": "assistant", "content": "Hi."},
                 {"role": "user", "content": "Bye"}],
    "temperature": 0.3, "top_p": 0.8, "top_k": 40,
    "stop_sequences": ["###"], "metadata": {"user_id": "u"},
    "thinking": {"type": "enabled", "budget_tokens": 2000},
    "tools": [{"name": "t", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto"}, "service_tier": "auto", "stream": true
  })");
  const Request& r = call.request;
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "You are terse.");
  EXPECT_EQ(r.messages[1].role, "user");
  EXPECT_EQ(r.messages[3].content, "Bye");
  EXPECT_EQ(r.params.max_tokens, 1024);
  EXPECT_EQ(r.params.temperature, 0.3);
  EXPECT_EQ(r.params.top_p, 0.8);
  EXPECT_EQ(r.params.stop, std::vector<std::string>{"###"});
  EXPECT_EQ(r.params.tool_choice_json, R"({"type":"auto"})");
  EXPECT_FALSE(r.params.tools_json.empty());
  const Json extra = Json::parse(r.params.extra_json);
  EXPECT_EQ(extra["top_k"], 40);
  EXPECT_EQ(extra["thinking"]["budget_tokens"], 2000);
  EXPECT_EQ(extra["service_tier"], "auto");
  EXPECT_FALSE(extra.contains("metadata"));
  EXPECT_TRUE(call.stream);
  EXPECT_FALSE(call.exact_only);
}

TEST(AnthropicRequest, TransportOnlyAndAnswerChangingFields) {
  const std::string base = KeyOf(Api::kAnthropicMessages, Claude(""));
  EXPECT_EQ(KeyOf(Api::kAnthropicMessages,
                  Claude(R"(,"stream":true,"metadata":{"user_id":"x"})")),
            base);
  EXPECT_NE(KeyOf(Api::kAnthropicMessages, Claude(R"(,"temperature":0)")),
            base);
  EXPECT_NE(KeyOf(Api::kAnthropicMessages, Claude(R"(,"top_k":5)")), base);
  EXPECT_NE(
      KeyOf(Api::kAnthropicMessages,
            Claude(R"(,"thinking":{"type":"enabled","budget_tokens":1024})")),
      base);
  EXPECT_NE(KeyOf(Api::kAnthropicMessages,
                  R"({"model":"claude-sonnet-4-5","max_tokens":101,)"
                  R"("messages":[{"role":"user","content":"Hi"}]})"),
            base);
  EXPECT_NE(KeyOf(Api::kAnthropicMessages, Claude(R"(,"system":"Be nice")")),
            base);
}

TEST(AnthropicRequest, SystemBlocksJoinAndIgnoreCacheControl) {
  const ParsedCall call = Parse(
      Api::kAnthropicMessages,
      Claude(
          R"(,"system":[{"type":"text","text":"Part one."},)"
          R"({"type":"text","text":"Part two.","cache_control":{"type":"ephemeral"}}])"));
  ASSERT_EQ(call.request.messages.size(), 2u);
  // Several blocks are not one joined string: an exact key of their own.
  EXPECT_TRUE(call.exact_only);
  EXPECT_NE(Key(call), KeyOf(Api::kAnthropicMessages,
                             Claude(R"(,"system":"Part one.\nPart two.")")));
  // cache_control does not change the key.
  EXPECT_EQ(Key(call),
            KeyOf(Api::kAnthropicMessages,
                  Claude(R"(,"system":[{"type":"text","text":"Part one."},)"
                         R"({"type":"text","text":"Part two."}])")));
  // One block is the same prompt as the string.
  EXPECT_EQ(KeyOf(Api::kAnthropicMessages,
                  Claude(R"(,"system":[{"type":"text","text":"Be brief.",)"
                         R"("cache_control":{"type":"ephemeral"}}])")),
            KeyOf(Api::kAnthropicMessages, Claude(R"(,"system":"Be brief.")")));
}

TEST(AnthropicRequest, TextBlocksJoinAndIgnoreCacheControl) {
  const std::string blocks = KeyOf(
      Api::kAnthropicMessages,
      Claude(
          "",
          R"([{"role":"user","content":[{"type":"text","text":"a"},)"
          R"({"type":"text","text":"b","cache_control":{"type":"ephemeral"}}]}])"));
  EXPECT_NE(blocks,
            KeyOf(Api::kAnthropicMessages,
                  Claude("", R"([{"role":"user","content":"a\n\nb"}])")));
  EXPECT_EQ(
      blocks,
      KeyOf(
          Api::kAnthropicMessages,
          Claude("", R"([{"role":"user","content":[{"type":"text","text":"a"},)"
                     R"({"type":"text","text":"b"}]}])")));
}

TEST(AnthropicRequest, CacheControlInsideToolSchemasIsContent) {
  auto tools = [](const char* property) {
    return KeyOf(
        Api::kAnthropicMessages,
        Claude(absl::StrCat(
            R"(,"tools":[{"name":"t","cache_control":{"type":"ephemeral"},)"
            R"("input_schema":{"type":"object","properties":{")",
            property, R"(":{"type":"string"}}}}])")));
  };
  EXPECT_NE(tools("cache_control"), tools("other"));
}

std::string ClaudeImage(const std::string& data, const std::string& cache) {
  return R"([{"role":"user","content":[{"type":"image","source":{"type":"base64",)"
         R"("media_type":"image/png","data":")" +
         data + R"("})" + cache + R"(},{"type":"text","text":"Describe"}]}])";
}

TEST(AnthropicRequest, ImagesAreFoldedWithoutCacheControl) {
  const ParsedCall a =
      Parse(Api::kAnthropicMessages, Claude("", ClaudeImage("AAAA", "")));
  const ParsedCall a_cached = Parse(
      Api::kAnthropicMessages,
      Claude("",
             ClaudeImage("AAAA", R"(,"cache_control":{"type":"ephemeral"})")));
  const ParsedCall b =
      Parse(Api::kAnthropicMessages, Claude("", ClaudeImage("BBBB", "")));
  EXPECT_TRUE(a.exact_only);
  EXPECT_EQ(a.request.messages[0].content.find("cache_control"),
            std::string::npos);
  EXPECT_EQ(Key(a), Key(a_cached));
  EXPECT_NE(Key(a), Key(b));
  // Tool results as blocks fold too.
  const ParsedCall tool = Parse(
      Api::kAnthropicMessages,
      Claude("",
             R"([{"role":"user","content":"Weather?"},)"
             R"({"role":"assistant","content":[{"type":"tool_use","id":"tu_1",)"
             R"("name":"weather","input":{"city":"Oslo"}}]},)"
             R"({"role":"user","content":[{"type":"tool_result",)"
             R"("tool_use_id":"tu_1","content":"sunny"}]}])"));
  EXPECT_TRUE(tool.exact_only);
  EXPECT_EQ(tool.request.messages.size(), 3u);
}

TEST(AnthropicRequest, UnknownMessageKeysFoldTheMessage) {
  const ParsedCall call = Parse(
      Api::kAnthropicMessages,
      Claude("", R"([{"role":"user","content":"Hi","extra_key":{"x":1}}])"));
  EXPECT_TRUE(call.exact_only);
  EXPECT_EQ(Json::parse(call.request.messages[0].content)["extra_key"]["x"], 1);
  EXPECT_NE(Key(call), KeyOf(Api::kAnthropicMessages, Claude("")));
}

TEST(AnthropicRequest, ToolCacheControlIgnored) {
  EXPECT_EQ(
      KeyOf(Api::kAnthropicMessages,
            Claude(R"(,"tools":[{"name":"t","input_schema":{"type":"object"},)"
                   R"("cache_control":{"type":"ephemeral"}}])")),
      KeyOf(
          Api::kAnthropicMessages,
          Claude(
              R"(,"tools":[{"name":"t","input_schema":{"type":"object"}}])")));
}

TEST(AnthropicRequest, Errors) {
  const Api api = Api::kAnthropicMessages;
  ExpectError(api, "{]", "body is not valid JSON");
  ExpectError(api,
              R"({"model":"c","messages":[{"role":"user","content":"x"}]})",
              "max_tokens: required");
  ExpectError(api,
              R"({"max_tokens":5,"messages":[{"role":"user","content":"x"}]})",
              "model: required");
  ExpectError(api, R"({"model":"c","max_tokens":5})", "messages: required");
  ExpectError(api, R"({"model":"c","max_tokens":5,"messages":[]})",
              "messages: must be a non-empty array");
  ExpectError(
      api,
      R"({"model":"c","max_tokens":0,"messages":[{"role":"user","content":"x"}]})",
      "max_tokens: must be a positive integer");
  ExpectError(api, Claude("", R"([{"role":"system","content":"x"}])"),
              "messages[0].role: must not be \"system\"");
  ExpectError(api, Claude("", R"([{"role":"user"}])"),
              "messages[0].content: required");
  ExpectError(api, Claude("", R"([{"content":"x"}])"),
              "messages[0].role: required");
  ExpectError(api, Claude("", R"([{"role":"user","content":7}])"),
              "messages[0].content: must be a string or an array");
  ExpectError(api, Claude("", R"([{"role":"user","content":[{"text":"x"}]}])"),
              "messages[0].content[0].type: must be a string");
  ExpectError(
      api,
      Claude("", R"([{"role":"user","content":[{"type":"text","text":1}]}])"),
      "messages[0].content[0].text: must be a string");
  ExpectError(api, Claude(R"(,"system":5)"), "system: must be a string");
  ExpectError(api, Claude(R"(,"system":[{"type":"text"}])"),
              "system[0].text: must be a string");
  ExpectError(api, Claude(R"(,"stop":["x"])"), "stop: is not an Anthropic");
  ExpectError(api, Claude(R"(,"stop_sequences":"x,y")"),
              "stop_sequences: must be an array of strings");
  ExpectError(api, Claude(R"(,"stop_sequences":[1])"),
              "stop_sequences[0]: must be a string");
  ExpectError(api, Claude(R"(,"tool_choice":"auto")"),
              "tool_choice: must be an object");
  ExpectError(api, Claude(R"(,"stream":1)"), "stream: must be a boolean");
}

// ---------------------------------------------------------------------------
// RenderRequestBody

TEST(RenderRequest, RoundTripsToTheSameKey) {
  const std::vector<std::pair<Api, std::string>> bodies = {
      {Api::kOpenAiChat,
       R"({"model":"gpt-4o","messages":[{"role":"system","content":"S"},)"
       R"({"role":"user","content":"Q","name":"n"},)"
       R"({"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",)"
       R"("function":{"name":"f","arguments":"{}"}}]},)"
       R"({"role":"tool","tool_call_id":"c1","content":"R"}],)"
       R"("temperature":0.5,"top_p":0.5,"max_completion_tokens":9,"stop":["x","y"],)"
       R"("seed":3,"tools":[{"type":"function","function":{"name":"f"}}],)"
       R"("tool_choice":{"type":"function","function":{"name":"f"}},)"
       R"("response_format":{"type":"json_object"},"frequency_penalty":1.5,)"
       R"("user":"u","stream":true})"},
      {Api::kOpenAiChat, Chat("", ImageMessage("https://x/a.png"))},
      {Api::kOpenAiChat,
       Chat("", R"([{"role":"assistant","content":"x","audio":{"id":"a"}},)"
                R"({"role":"user","content":"[1,2]"}])")},
      {Api::kOpenAiCompletions,
       Legacy(R"("Once upon")", R"(,"max_tokens":7,"suffix":"end")")},
      {Api::kOpenAiCompletions, Legacy(R"(["a","b"])")},
      {Api::kAnthropicMessages,
       Claude(
           R"(,"system":"Sys","top_k":3,"stop_sequences":["z"],"temperature":0.1)")},
      {Api::kAnthropicMessages,
       Claude(
           R"(,"system":[{"type":"text","text":"s1"},{"type":"image","source":{}}])",
           ClaudeImage("QUJD", ""))},
      {Api::kAnthropicMessages,
       Claude(
           R"(,"tools":[{"name":"t","input_schema":{"type":"object"}}],)"
           R"("tool_choice":{"type":"any"})",
           R"([{"role":"user","content":"Hi"},{"role":"assistant","content":[)"
           R"({"type":"tool_use","id":"tu","name":"t","input":{"a":1}}]},)"
           R"({"role":"user","content":[{"type":"tool_result","tool_use_id":"tu",)"
           R"("content":"ok"}]}])")},
  };
  for (const auto& [api, body] : bodies) {
    SCOPED_TRACE(body);
    ParsedCall call = Parse(api, body);
    call.request.backend = "openai";
    for (bool stream : {false, true}) {
      const std::string rendered = RenderRequestBody(api, call.request, stream);
      SCOPED_TRACE(rendered);
      const Json json = Json::parse(rendered);
      EXPECT_FALSE(json.contains("api"));
      EXPECT_FALSE(json.contains("pc_folded"));
      EXPECT_EQ(json.contains("stream"), stream);
      const ParsedCall again = Parse(api, rendered);
      EXPECT_EQ(Key(again), Key(call));
      EXPECT_EQ(again.exact_only, call.exact_only);
      EXPECT_EQ(again.uncacheable_reason, call.uncacheable_reason);
    }
  }
}

TEST(RenderRequest, ShapesPerApi) {
  Request r;
  r.backend = "openai";
  r.model = "m";
  r.messages = {{"system", "S", "", "", ""}, {"user", "Q", "", "", ""}};
  r.params.max_tokens = 12;
  r.params.extra_json = R"({"api":"completions","pc_folded":[],"top_k":2})";

  const Json chat = Json::parse(RenderRequestBody(Api::kOpenAiChat, r, true));
  EXPECT_EQ(chat["stream"], true);
  EXPECT_EQ(chat["stream_options"]["include_usage"], true);
  EXPECT_EQ(chat["max_completion_tokens"], 12);
  EXPECT_EQ(chat["messages"][0]["role"], "system");
  EXPECT_EQ(chat["top_k"], 2);
  EXPECT_FALSE(chat.contains("api"));

  r.backend = "self-hosted";
  const Json other = Json::parse(RenderRequestBody(Api::kOpenAiChat, r, false));
  EXPECT_EQ(other["max_tokens"], 12);
  EXPECT_FALSE(other.contains("stream"));
  EXPECT_FALSE(other.contains("stream_options"));

  const Json claude =
      Json::parse(RenderRequestBody(Api::kAnthropicMessages, r, true));
  EXPECT_EQ(claude["system"], "S");
  ASSERT_EQ(claude["messages"].size(), 1u);
  EXPECT_EQ(claude["messages"][0]["content"], "Q");
  EXPECT_EQ(claude["max_tokens"], 12);
  EXPECT_EQ(claude["stream"], true);
  EXPECT_FALSE(claude.contains("stream_options"));
  r.params.max_tokens.reset();
  EXPECT_EQ(Json::parse(RenderRequestBody(Api::kAnthropicMessages, r, false,
                                          321))["max_tokens"],
            321);

  Request legacy;
  legacy.model = "m";
  legacy.messages = {{"user", "Once", "", "", ""}};
  legacy.params.extra_json = R"({"api":"completions"})";
  const Json completions =
      Json::parse(RenderRequestBody(Api::kOpenAiCompletions, legacy, false));
  EXPECT_EQ(completions["prompt"], "Once");
  EXPECT_FALSE(completions.contains("api"));
  EXPECT_FALSE(completions.contains("messages"));
}

TEST(RenderRequest, OpenAiToolTurnsBecomeAnthropicBlocks) {
  Request r;
  r.model = "claude";
  r.messages = {{"user", "Weather?", "", "", ""},
                {"assistant", "", "", "",
                 R"([{"id":"c1","type":"function","function":{"name":"w",)"
                 R"("arguments":"{\"city\":\"Oslo\"}"}}])"},
                {"tool", "sunny", "", "c1", ""}};
  r.params.tools_json =
      R"([{"type":"function","function":{"name":"w","parameters":{"type":"object"}}}])";
  r.params.tool_choice_json = R"("required")";
  const Json body =
      Json::parse(RenderRequestBody(Api::kAnthropicMessages, r, false));
  EXPECT_EQ(body["messages"][1]["content"][0]["type"], "tool_use");
  EXPECT_EQ(body["messages"][1]["content"][0]["input"]["city"], "Oslo");
  EXPECT_EQ(body["messages"][2]["role"], "user");
  EXPECT_EQ(body["messages"][2]["content"][0]["tool_use_id"], "c1");
  EXPECT_EQ(body["tools"][0]["name"], "w");
  EXPECT_EQ(body["tools"][0]["input_schema"]["type"], "object");
  EXPECT_EQ(body["tool_choice"]["type"], "any");
}

// ---------------------------------------------------------------------------
// Response bodies

TEST(ResponseBody, ParsesOpenAiChat) {
  absl::StatusOr<Response> r = ParseResponseBody(Api::kOpenAiChat, R"({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
      "tool_calls": [{"id": "call_9", "type": "function",
        "function": {"name": "f", "arguments": "{\"x\": 1}"}}],
      "refusal": null}, "logprobs": null, "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
      "prompt_tokens_details": {"cached_tokens": 64}}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "");
  EXPECT_EQ(r->finish_reason, "tool_calls");
  const Json calls = Json::parse(r->tool_calls_json);
  EXPECT_EQ(calls[0]["id"], "call_9");
  EXPECT_EQ(calls[0]["function"]["arguments"], "{\"x\": 1}");
  EXPECT_EQ(r->usage.input_tokens, 100);
  EXPECT_EQ(r->usage.output_tokens, 20);
  EXPECT_EQ(r->usage.cached_input_tokens, 64);
  EXPECT_EQ(r->usage.cache_write_input_tokens, 0);
}

TEST(ResponseBody, ParsesOpenAiCompletionsAndRefusals) {
  absl::StatusOr<Response> legacy = ParseResponseBody(
      Api::kOpenAiCompletions,
      R"({"object":"text_completion","choices":[{"text":" there","index":0,)"
      R"("logprobs":null,"finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})");
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  EXPECT_EQ(legacy->text, " there");
  EXPECT_EQ(legacy->finish_reason, "length");
  EXPECT_EQ(legacy->usage.output_tokens, 2);

  absl::StatusOr<Response> refusal = ParseResponseBody(
      Api::kOpenAiChat,
      R"({"choices":[{"message":{"role":"assistant","content":null,)"
      R"("refusal":"I can't help with that."},"finish_reason":"stop"}]})");
  ASSERT_TRUE(refusal.ok()) << refusal.status();
  EXPECT_EQ(refusal->text, "I can't help with that.");
}

TEST(ResponseBody, OpenAiErrors) {
  auto expect = [](Api api, const std::string& body, const std::string& what) {
    absl::StatusOr<Response> r = ParseResponseBody(api, body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(what));
  };
  expect(Api::kOpenAiChat, "not json", "body is not valid JSON");
  expect(Api::kOpenAiChat, R"({"choices":[]})", "choices: must be a non-empty");
  expect(Api::kOpenAiChat, R"({"choices":[1]})",
         "choices[0]: must be an object");
  expect(Api::kOpenAiChat, R"({"choices":[{}]})", "choices[0].message");
  expect(Api::kOpenAiChat, R"({"choices":[{"message":{"content":3}}]})",
         "choices[0].message.content");
  expect(Api::kOpenAiChat,
         R"({"choices":[{"message":{"content":"x","tool_calls":{}}}]})",
         "choices[0].message.tool_calls");
  expect(Api::kOpenAiChat,
         R"({"choices":[{"message":{"content":"x"},"finish_reason":1}]})",
         "choices[0].finish_reason");
  expect(Api::kOpenAiChat,
         R"({"choices":[{"message":{"content":"x"}}],"usage":5})", "usage");
  expect(Api::kOpenAiChat, R"({"error":{"message":"boom"}})", "boom");
  expect(Api::kOpenAiCompletions, R"({"choices":[{"text":5}]})",
         "choices[0].text");
  expect(Api::kAnthropicMessages, R"({"type":"message"})", "content");
  expect(Api::kAnthropicMessages, R"({"content":[5]})", "content[0]");
  expect(Api::kAnthropicMessages, R"({"content":[{"type":"text"}]})",
         "content[0].text");
  expect(Api::kAnthropicMessages,
         R"({"content":[{"type":"tool_use","id":"x","name":"n","input":"s"}]})",
         "content[0].input");
  expect(
      Api::kAnthropicMessages,
      R"({"type":"error","error":{"type":"overloaded_error","message":"busy"}})",
      "busy");
}

TEST(ResponseBody, ParsesAnthropicWithUsageMappingAndToolUse) {
  absl::StatusOr<Response> r = ParseResponseBody(Api::kAnthropicMessages, R"({
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
    "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Let me "},
                {"type": "text", "text": "check."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather",
                 "input": {"city": "Oslo", "days": 2}}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 10, "output_tokens": 30,
              "cache_creation_input_tokens": 200,
              "cache_read_input_tokens": 1000}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "Let me check.");
  // Thinking blocks cannot be replayed: returned, never cached.
  EXPECT_EQ(r->finish_reason, "tool_use (not cached: thinking blocks)");
  EXPECT_FALSE(IsCompleteFinishReason(r->finish_reason));
  EXPECT_EQ(r->usage.input_tokens, 1210);
  EXPECT_EQ(r->usage.cached_input_tokens, 1000);
  EXPECT_EQ(r->usage.cache_write_input_tokens, 200);
  EXPECT_EQ(r->usage.output_tokens, 30);
  const Json calls = Json::parse(r->tool_calls_json);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["id"], "toolu_1");
  EXPECT_EQ(calls[0]["type"], "function");
  EXPECT_EQ(calls[0]["function"]["name"], "weather");
  EXPECT_EQ(Json::parse(calls[0]["function"]["arguments"].get<std::string>()),
            Json::parse(R"({"city":"Oslo","days":2})"));

  // Rendering inverts the usage mapping exactly.
  const Json body = Json::parse(
      RenderResponseBody(Api::kAnthropicMessages, *r, "claude", "msg_x", 5));
  EXPECT_EQ(body["usage"]["input_tokens"], 10);
  EXPECT_EQ(body["usage"]["cache_read_input_tokens"], 1000);
  EXPECT_EQ(body["usage"]["cache_creation_input_tokens"], 200);
  EXPECT_EQ(body["usage"]["output_tokens"], 30);
  EXPECT_EQ(body["content"][1]["type"], "tool_use");
  EXPECT_EQ(body["content"][1]["input"]["city"], "Oslo");
}

Response SampleAnswer(Api api, bool with_tools) {
  Response r;
  r.text = "Héllo, wörld! 世界 🎉 — a longer text to need several chunks.";
  r.finish_reason = api == Api::kAnthropicMessages ? "end_turn" : "stop";
  r.usage.input_tokens = 1500;
  r.usage.output_tokens = 42;
  r.usage.cached_input_tokens = 1024;
  if (api == Api::kAnthropicMessages) r.usage.cache_write_input_tokens = 300;
  if (with_tools && api != Api::kOpenAiCompletions) {
    r.tool_calls_json =
        R"([{"function":{"arguments":"{\"city\":\"Zürich\",\"days\":[1,2]}",)"
        R"("name":"weather"},"id":"call_1","type":"function"},)"
        R"({"function":{"arguments":"{}","name":"time"},"id":"call_2",)"
        R"("type":"function"}])";
    r.finish_reason =
        api == Api::kAnthropicMessages ? "tool_use" : "tool_calls";
  }
  return r;
}

void ExpectSameAnswer(const Response& got, const Response& want,
                      bool with_usage) {
  EXPECT_EQ(got.text, want.text);
  EXPECT_EQ(got.finish_reason, want.finish_reason);
  if (want.tool_calls_json.empty()) {
    EXPECT_EQ(got.tool_calls_json, "");
  } else {
    EXPECT_EQ(Json::parse(got.tool_calls_json),
              Json::parse(want.tool_calls_json));
  }
  if (with_usage) {
    EXPECT_EQ(got.usage.input_tokens, want.usage.input_tokens);
    EXPECT_EQ(got.usage.output_tokens, want.usage.output_tokens);
    EXPECT_EQ(got.usage.cached_input_tokens, want.usage.cached_input_tokens);
    EXPECT_EQ(got.usage.cache_write_input_tokens,
              want.usage.cache_write_input_tokens);
  } else {
    EXPECT_EQ(got.usage.input_tokens, 0);
    EXPECT_EQ(got.usage.output_tokens, 0);
  }
}

TEST(ResponseBody, RenderParseRoundTrip) {
  for (Api api : kAllApis) {
    for (bool tools : {false, true}) {
      SCOPED_TRACE(std::string(ApiName(api)) + (tools ? " tools" : ""));
      const Response want = SampleAnswer(api, tools);
      const std::string body =
          RenderResponseBody(api, want, "model-x", "resp-id-1", 1700000000);
      const Json json = Json::parse(body);
      EXPECT_EQ(json["id"], "resp-id-1");
      EXPECT_EQ(json["model"], "model-x");
      if (api != Api::kAnthropicMessages) {
        EXPECT_EQ(json["created"], 1700000000);
      }
      absl::StatusOr<Response> got = ParseResponseBody(api, body);
      ASSERT_TRUE(got.ok()) << got.status();
      ExpectSameAnswer(*got, want, true);
    }
  }
}

TEST(ResponseBody, OpenAiChatShape) {
  Response r;
  r.tool_calls_json =
      R"([{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}])";
  r.finish_reason = "tool_calls";
  Json body =
      Json::parse(RenderResponseBody(Api::kOpenAiChat, r, "m", "id", 1));
  EXPECT_EQ(body["object"], "chat.completion");
  const Json& message = body["choices"][0]["message"];
  EXPECT_TRUE(message["content"].is_null());
  EXPECT_EQ(message["tool_calls"][0]["id"], "c");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "tool_calls");

  r = Response();
  r.text = "plain";
  r.finish_reason = "stop";
  r.usage.input_tokens = 5;
  r.usage.output_tokens = 2;
  body = Json::parse(RenderResponseBody(Api::kOpenAiChat, r, "m", "id", 1));
  EXPECT_FALSE(body["choices"][0]["message"].contains("tool_calls"));
  EXPECT_EQ(body["choices"][0]["message"]["content"], "plain");
  EXPECT_EQ(body["usage"]["total_tokens"], 7);
  EXPECT_EQ(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);

  // Anthropic finish reasons in OpenAI words and back.
  r.finish_reason = "end_turn";
  body = Json::parse(RenderResponseBody(Api::kOpenAiChat, r, "m", "id", 1));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  r.finish_reason = "length";
  body =
      Json::parse(RenderResponseBody(Api::kAnthropicMessages, r, "m", "id", 1));
  EXPECT_EQ(body["stop_reason"], "max_tokens");
  EXPECT_EQ(body["type"], "message");
}

// ---------------------------------------------------------------------------
// SSE

// Feeds `stream` in random pieces of 1..max_piece bytes.
absl::StatusOr<Response> Assemble(Api api, const std::string& stream,
                                  size_t max_piece, uint32_t seed) {
  SseAssembler assembler(api);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> size(1, max_piece);
  for (size_t pos = 0; pos < stream.size();) {
    const size_t n = std::min(size(rng), stream.size() - pos);
    absl::Status s = assembler.Feed(absl::string_view(stream).substr(pos, n));
    if (!s.ok()) return s;
    pos += n;
  }
  EXPECT_TRUE(assembler.finished());
  return assembler.Finish();
}

TEST(Sse, RenderAssembleRoundTrip) {
  for (Api api : kAllApis) {
    for (bool tools : {false, true}) {
      for (bool usage : {false, true}) {
        for (size_t chunk : {1, 3, 7, 64, 100000}) {
          SCOPED_TRACE(absl::StrCat(ApiName(api), " tools=", tools,
                                    " usage=", usage, " chunk=", chunk));
          const Response want = SampleAnswer(api, tools);
          const std::string stream =
              RenderSse(api, want, "model-x", "id-1", 1700000000, usage, chunk);
          for (size_t max_piece : {1, 2, 13, 1000}) {
            absl::StatusOr<Response> got =
                Assemble(api, stream, max_piece, 17 + max_piece);
            ASSERT_TRUE(got.ok()) << got.status();
            ExpectSameAnswer(*got, want,
                             usage || api == Api::kAnthropicMessages);
          }
        }
      }
    }
  }
}

// The data payloads of a rendered stream.
std::vector<Json> DataPayloads(const std::string& stream) {
  std::vector<Json> out;
  size_t pos = 0;
  while ((pos = stream.find("data: ", pos)) != std::string::npos) {
    const size_t end = stream.find('\n', pos);
    const std::string data = stream.substr(pos + 6, end - pos - 6);
    if (data != "[DONE]") out.push_back(Json::parse(data));
    pos = end;
  }
  return out;
}

TEST(Sse, OpenAiChunksAreSmallWholeCharactersAndWellFormed) {
  const Response answer = SampleAnswer(Api::kOpenAiChat, true);
  const std::string stream =
      RenderSse(Api::kOpenAiChat, answer, "m", "chatcmpl-x", 99, true, 4);
  EXPECT_TRUE(stream.ends_with("data: [DONE]\n\n"));
  const std::vector<Json> chunks = DataPayloads(stream);
  ASSERT_GE(chunks.size(), 4u);
  EXPECT_EQ(chunks.front()["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  for (const Json& c : chunks) {
    EXPECT_EQ(c["id"], "chatcmpl-x");
    EXPECT_EQ(c["created"], 99);
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    if (c["choices"].empty()) continue;
    const Json& delta = c["choices"][0]["delta"];
    if (delta.contains("content") && delta["content"].is_string()) {
      const std::string piece = delta["content"];
      // nlohmann rejects invalid UTF-8, so the piece is whole characters.
      EXPECT_LE(piece.size(), 4u);
      text += piece;
    }
  }
  EXPECT_EQ(text, answer.text);
  // The last choice chunk has the finish reason; then the usage chunk.
  const Json& last = chunks.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["prompt_tokens"], 1500);
  EXPECT_EQ(chunks[chunks.size() - 2]["choices"][0]["finish_reason"],
            "tool_calls");
}

TEST(Sse, AnthropicEventsAreWellFormed) {
  const Response answer = SampleAnswer(Api::kAnthropicMessages, true);
  const std::string stream = RenderSse(Api::kAnthropicMessages, answer,
                                       "claude", "msg_1", 5, false, 16);
  EXPECT_TRUE(stream.starts_with("event: message_start\ndata: "));
  EXPECT_TRUE(stream.ends_with(
      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
  const std::vector<Json> events = DataPayloads(stream);
  EXPECT_EQ(events[0]["message"]["id"], "msg_1");
  EXPECT_EQ(events[0]["message"]["usage"]["input_tokens"], 176);
  EXPECT_EQ(events[0]["message"]["usage"]["cache_read_input_tokens"], 1024);
  const Json& delta = events[events.size() - 2];
  EXPECT_EQ(delta["type"], "message_delta");
  EXPECT_EQ(delta["delta"]["stop_reason"], "tool_use");
  EXPECT_EQ(delta["usage"]["output_tokens"], 42);
}

TEST(Sse, TruncatedStreamIsNotAnAnswer) {
  for (Api api : kAllApis) {
    const std::string stream =
        RenderSse(api, SampleAnswer(api, true), "m", "id", 1, true, 8);
    const size_t cut = api == Api::kAnthropicMessages
                           ? stream.find("event: message_stop")
                           : stream.find("data: [DONE]");
    for (size_t end : {cut, cut / 2, size_t{10}, stream.size() - 1}) {
      SseAssembler assembler(api);
      ASSERT_TRUE(assembler.Feed(stream.substr(0, end)).ok());
      EXPECT_FALSE(assembler.finished()) << ApiName(api) << " " << end;
      absl::StatusOr<Response> r = assembler.Finish();
      EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    }
  }
}

TEST(Sse, CrlfLineEndings) {
  for (Api api : kAllApis) {
    const Response want = SampleAnswer(api, true);
    const std::string stream = absl::StrReplaceAll(
        RenderSse(api, want, "m", "id", 1, true, 5), {{"\n", "\r\n"}});
    for (size_t max_piece : {1, 9, 4096}) {
      absl::StatusOr<Response> got = Assemble(api, stream, max_piece, 3);
      ASSERT_TRUE(got.ok()) << got.status();
      ExpectSameAnswer(*got, want, true);
    }
  }
}

TEST(Sse, OpenAiUpstreamStreamWithCommentsAndInterleavedToolCalls) {
  const std::string stream =
      ": keep-alive\n\n"
      "id: 1\nretry: 100\n"
      R"(data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]})"
      "\n\n"
      R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"g","arguments":"{\"y\""}}]}}]})"
      "\n\n"
      R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\":"}}]}}]})"
      "\n\n"
      R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}},{"index":1,"function":{"arguments":":2}"}}]}}]})"
      "\n\n"
      R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null})"
      "\n\n"
      R"(data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}})"
      "\n\n"
      "data: [DONE]\n\n";
  absl::StatusOr<Response> r = Assemble(Api::kOpenAiChat, stream, 5, 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "");
  EXPECT_EQ(r->finish_reason, "tool_calls");
  EXPECT_EQ(r->usage.input_tokens, 9);
  EXPECT_EQ(r->usage.output_tokens, 4);
  const Json calls = Json::parse(r->tool_calls_json);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0]["id"], "call_a");
  EXPECT_EQ(calls[0]["function"]["arguments"], "{\"x\":1}");
  EXPECT_EQ(calls[1]["function"]["name"], "g");
  EXPECT_EQ(calls[1]["function"]["arguments"], "{\"y\":2}");
}

TEST(Sse, AnthropicUpstreamStreamWithPingAndThinking) {
  const std::string stream =
      "event: message_start\n"
      R"(data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_read_input_tokens":100,"cache_creation_input_tokens":0,"output_tokens":1}}})"
      "\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n"
      "event: content_block_start\n"
      R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})"
      "\n\nevent: content_block_delta\n"
      R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}})"
      "\n\nevent: content_block_stop\n"
      R"(data: {"type":"content_block_stop","index":0})"
      "\n\nevent: content_block_start\n"
      R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})"
      "\n\nevent: content_block_delta\n"
      R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello"}})"
      "\n\nevent: content_block_delta\n"
      R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":" there"}})"
      "\n\nevent: content_block_stop\n"
      R"(data: {"type":"content_block_stop","index":1})"
      "\n\nevent: message_delta\n"
      R"(data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}})"
      "\n\nevent: message_stop\n"
      R"(data: {"type":"message_stop"})"
      "\n\n";
  absl::StatusOr<Response> r = Assemble(Api::kAnthropicMessages, stream, 7, 2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "Hello there");
  EXPECT_EQ(r->finish_reason, "end_turn (not cached: thinking blocks)");
  EXPECT_EQ(r->usage.input_tokens, 125);
  EXPECT_EQ(r->usage.cached_input_tokens, 100);
  EXPECT_EQ(r->usage.output_tokens, 15);
  EXPECT_TRUE(r->tool_calls_json.empty());
}

TEST(Sse, ErrorEventsAreUnavailableAndSticky) {
  {
    SseAssembler a(Api::kOpenAiChat);
    ASSERT_TRUE(
        a.Feed("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":"
               "\"x\"}}]}\n\n")
            .ok());
    absl::Status s = a.Feed(
        "data: {\"error\":{\"message\":\"The server had an error\","
        "\"type\":\"server_error\"}}\n\n");
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(s.message()), HasSubstr("The server had an error"));
    EXPECT_EQ(a.Feed("data: [DONE]\n\n").code(),
              absl::StatusCode::kUnavailable);
    EXPECT_FALSE(a.finished());
    EXPECT_EQ(a.Finish().status().code(), absl::StatusCode::kUnavailable);
  }
  {
    SseAssembler a(Api::kAnthropicMessages);
    absl::Status s = a.Feed(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
        "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(s.message()), HasSubstr("Overloaded"));
    EXPECT_FALSE(a.finished());
  }
}

TEST(Sse, MalformedDataIsInvalidArgument) {
  for (Api api : kAllApis) {
    SseAssembler a(api);
    absl::Status s = a.Feed("event: message_start\ndata: {not json\n\n");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << ApiName(api);
    EXPECT_EQ(a.Feed("data: [DONE]\n\n").code(),
              absl::StatusCode::kInvalidArgument);
  }
  SseAssembler a(Api::kAnthropicMessages);
  EXPECT_EQ(a.Feed("event: content_block_delta\ndata: {\"type\":"
                   "\"content_block_delta\",\"index\":4,\"delta\":{}}\n\n")
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Sse, OddShapesDoNotThrow) {
  // Wrong types inside otherwise valid events are skipped, not fatal.
  SseAssembler a(Api::kAnthropicMessages);
  EXPECT_TRUE(a.Feed("event: content_block_start\ndata: {\"type\":"
                     "\"content_block_start\",\"index\":\"0\","
                     "\"content_block\":[1]}\n\n")
                  .ok());
  SseAssembler b(Api::kOpenAiChat);
  EXPECT_TRUE(b.Feed("data: {\"choices\":[{\"index\":\"x\",\"delta\":5}],"
                     "\"usage\":[]}\n\n")
                  .ok());
  // Broken tool calls in a stored answer render without throwing.
  Response odd;
  odd.text = "t";
  odd.tool_calls_json = R"([5,{"function":7,"id":3},{"function":{"name":1}}])";
  for (Api api : kAllApis) {
    EXPECT_FALSE(RenderSse(api, odd, "m", "id", 1, true).empty());
    EXPECT_FALSE(RenderResponseBody(api, odd, "m", "id", 1).empty());
  }
}

TEST(Sse, MultiLineDataAndNoSpaceAfterColon) {
  SseAssembler a(Api::kOpenAiChat);
  ASSERT_TRUE(a.Feed("data:{\"choices\":[{\"index\":0,\n"
                     "data:\"delta\":{\"content\":\"hi\"},\"finish_reason\":"
                     "\"stop\"}]}\n\ndata:[DONE]\n\n")
                  .ok());
  ASSERT_TRUE(a.finished());
  absl::StatusOr<Response> r = a.Finish();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "hi");
  EXPECT_EQ(r->finish_reason, "stop");
}

TEST(Sse, UsageOnlyWhenAskedAndLegacyShape) {
  const Response answer = SampleAnswer(Api::kOpenAiCompletions, false);
  const std::string stream =
      RenderSse(Api::kOpenAiCompletions, answer, "m", "cmpl-1", 7, false, 10);
  EXPECT_EQ(stream.find("usage"), std::string::npos);
  std::string text;
  for (const Json& c : DataPayloads(stream)) {
    EXPECT_EQ(c["object"], "text_completion");
    text += c["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(text, answer.text);
  const std::vector<Json> with_usage = DataPayloads(
      RenderSse(Api::kOpenAiCompletions, answer, "m", "cmpl-1", 7, true, 10));
  EXPECT_TRUE(with_usage.back()["choices"].empty());
  EXPECT_EQ(with_usage.back()["usage"]["completion_tokens"], 42);
}

TEST(Sse, EventsAfterTheTerminatorAreIgnored) {
  SseAssembler a(Api::kOpenAiChat);
  ASSERT_TRUE(a.Feed("data: {\"choices\":[{\"index\":0,\"delta\":{"
                     "\"content\":\"x\"},\"finish_reason\":\"length\"}]}"
                     "\n\ndata: [DONE]\n\ndata: {\"choices\":[{\"index\":0,"
                     "\"delta\":{\"content\":\"y\"}}]}\n\n")
                  .ok());
  absl::StatusOr<Response> r = a.Finish();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, "x");
  EXPECT_EQ(r->finish_reason, "length");  // returned, never cached
}

TEST(Sse, EmptyAnswer) {
  for (Api api : kAllApis) {
    Response empty;
    empty.finish_reason = "stop";
    absl::StatusOr<Response> got =
        Assemble(api, RenderSse(api, empty, "m", "id", 1, false), 3, 1);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->text, "");
    EXPECT_EQ(got->finish_reason,
              api == Api::kAnthropicMessages ? "end_turn" : "stop");
  }
}

// ---------------------------------------------------------------------------
// Errors

TEST(ErrorBody, OpenAiShape) {
  for (int status : {400, 401, 403, 404, 413, 429, 500, 502, 504}) {
    const Json body =
        Json::parse(RenderErrorBody(Api::kOpenAiChat, status, "bad \"thing\""));
    ASSERT_TRUE(body["error"].is_object()) << status;
    EXPECT_EQ(body["error"]["message"], "bad \"thing\"");
    EXPECT_TRUE(body["error"]["type"].is_string());
    EXPECT_TRUE(body["error"]["param"].is_null());
    EXPECT_TRUE(body["error"]["code"].is_null() ||
                body["error"]["code"].is_string());
  }
  Json body = Json::parse(
      RenderErrorBody(Api::kOpenAiCompletions, 400, "m", "messages[0].role"));
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "messages[0].role");
  body = Json::parse(RenderErrorBody(Api::kOpenAiChat, 429, "slow down"));
  EXPECT_EQ(body["error"]["type"], "rate_limit_error");
  // Only a 404 about the model is model_not_found (issue 14).
  body =
      Json::parse(RenderErrorBody(Api::kOpenAiChat, 404, "no model", "model"));
  EXPECT_EQ(body["error"]["code"], "model_not_found");
  body = Json::parse(RenderErrorBody(Api::kOpenAiChat, 404, "no such page"));
  EXPECT_EQ(body["error"]["code"], "not_found");
  body = Json::parse(RenderErrorBody(Api::kOpenAiChat, 502, "upstream"));
  EXPECT_EQ(body["error"]["type"], "server_error");
}

TEST(ErrorBody, AnthropicShape) {
  const std::vector<std::pair<int, std::string>> types = {
      {400, "invalid_request_error"},
      {401, "authentication_error"},
      {403, "permission_error"},
      {404, "not_found_error"},
      {413, "request_too_large"},
      {429, "rate_limit_error"},
      {500, "api_error"},
      {502, "api_error"},
      {529, "overloaded_error"}};
  for (const auto& [status, type] : types) {
    const Json body = Json::parse(
        RenderErrorBody(Api::kAnthropicMessages, status, "msg", "ignored"));
    EXPECT_EQ(body["type"], "error");
    EXPECT_EQ(body["error"]["type"], type) << status;
    EXPECT_EQ(body["error"]["message"], "msg");
    EXPECT_EQ(body["error"].size(), 2u);
  }
}

TEST(ErrorBody, HttpStatusFor) {
  EXPECT_EQ(HttpStatusFor(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusFor(absl::FailedPreconditionError("x")), 400);
  EXPECT_EQ(HttpStatusFor(absl::UnauthenticatedError("x")), 401);
  EXPECT_EQ(HttpStatusFor(absl::PermissionDeniedError("x")), 403);
  EXPECT_EQ(HttpStatusFor(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusFor(absl::ResourceExhaustedError("x")), 429);
  EXPECT_EQ(HttpStatusFor(absl::DeadlineExceededError("x")), 504);
  EXPECT_EQ(HttpStatusFor(absl::UnavailableError("x")), 502);
  EXPECT_EQ(HttpStatusFor(absl::InternalError("x")), 500);
  EXPECT_EQ(HttpStatusFor(absl::UnknownError("x")), 500);
}

TEST(ApiNameTest, Names) {
  EXPECT_STREQ(ApiName(Api::kOpenAiChat), "openai.chat");
  EXPECT_STREQ(ApiName(Api::kOpenAiCompletions), "openai.completions");
  EXPECT_STREQ(ApiName(Api::kAnthropicMessages), "anthropic.messages");
}

}  // namespace
}  // namespace promptcache::wire

namespace promptcache::wire {
namespace {

TEST(Robustness, DeeplyNestedBodiesAreRefusedNotACrash) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string body = absl::StrCat(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"foo":)", deep,
      "}");
  absl::StatusOr<ParsedCall> call = ParseRequestBody(Api::kOpenAiChat, body);
  EXPECT_EQ(call.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(call.status().message(), ::testing::HasSubstr("nested"));
  // Brackets inside strings do not count.
  const std::string text(5000, '[');
  EXPECT_TRUE(
      ParseRequestBody(
          Api::kOpenAiChat,
          absl::StrCat(R"({"model":"m","messages":[{"role":"user","content":")",
                       text, R"("}]})"))
          .ok());
  EXPECT_FALSE(ParseResponseBody(Api::kAnthropicMessages, body).ok());
}

TEST(Robustness, AnswersThatCannotBeReplayedAreNotCacheable) {
  absl::StatusOr<Response> refusal = ParseResponseBody(Api::kOpenAiChat, R"({
    "choices":[{"index":0,"message":{"role":"assistant","content":null,
      "refusal":"I can't help with that."},"finish_reason":"stop"}]})");
  ASSERT_TRUE(refusal.ok()) << refusal.status();
  EXPECT_EQ(refusal->text, "I can't help with that.");
  EXPECT_FALSE(IsCompleteFinishReason(refusal->finish_reason));
  absl::StatusOr<Response> legacy = ParseResponseBody(Api::kOpenAiChat, R"({
    "choices":[{"index":0,"message":{"role":"assistant","content":null,
      "function_call":{"name":"f","arguments":"{}"}},
      "finish_reason":"function_call"}]})");
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  EXPECT_FALSE(IsCompleteFinishReason(legacy->finish_reason));
}

TEST(Robustness, HugeOrNegativeUsageIsClamped) {
  absl::StatusOr<Response> r = ParseResponseBody(Api::kAnthropicMessages, R"({
    "content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn",
    "usage":{"input_tokens":18446744073709551615,"output_tokens":-5,
             "cache_read_input_tokens":9223372036854775807}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(r->usage.input_tokens, 0);
  EXPECT_LE(r->usage.input_tokens, int64_t{3} << 40);
  EXPECT_EQ(r->usage.output_tokens, 0);
}

}  // namespace
}  // namespace promptcache::wire
