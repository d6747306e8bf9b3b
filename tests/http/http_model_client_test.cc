// HttpModelClient against a stub provider server on 127.0.0.1: wire bodies,
// headers, endpoints, retries, error mapping, secrets, timeouts, and use as
// the upstream of a CachedClient.
#include "promptcache/http_model_client.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/provider_format.h"
#include "local_http_server.h"
#include "nlohmann/json.hpp"
#include "promptcache/cached_client.h"
#include "promptcache/keys.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::LocalHttpServer;

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr char kKey[] = "sk-test-0123456789abcdefSECRET";

// gMock prints absl::string_view (not std::) character by character.
std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// One request as the stub received it.
struct Seen {
  std::string path;
  httplib::Headers headers;  // Case-insensitive names.
  std::string body;

  std::optional<std::string> Header(const std::string& name) const {
    auto it = headers.find(name);
    if (it == headers.end()) return std::nullopt;
    return it->second;
  }
  Json json() const { return Json::parse(body, nullptr, false); }
};

// One scripted answer.
struct Reply {
  Reply() = default;
  Reply(int status, std::string body,
        std::vector<std::pair<std::string, std::string>> headers = {},
        std::chrono::milliseconds sleep = std::chrono::milliseconds(0))
      : status(status),
        body(std::move(body)),
        headers(std::move(headers)),
        sleep(sleep) {}

  int status = 200;
  std::string body;  // Empty: an echoing success body for the path.
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds sleep{0};
};

// The last message's text (or the prompt) of a request body.
std::string LastText(const Json& body) {
  if (!body.is_object()) return "";
  if (body.contains("prompt") && body["prompt"].is_string()) {
    return body["prompt"].get<std::string>();
  }
  if (body.contains("messages") && body["messages"].is_array() &&
      !body["messages"].empty() &&
      body["messages"].back().contains("content") &&
      body["messages"].back()["content"].is_string()) {
    return body["messages"].back()["content"].get<std::string>();
  }
  return "";
}

// A provider's success body that echoes the last message.
std::string EchoBody(const std::string& path, const Json& request) {
  const std::string text = "echo: " + LastText(request);
  if (path == "/v1/messages") {
    return Json{{"id", "msg_1"},
                {"type", "message"},
                {"role", "assistant"},
                {"model", "claude-test"},
                {"content", {{{"type", "text"}, {"text", text}}}},
                {"stop_reason", "end_turn"},
                {"usage", {{"input_tokens", 3}, {"output_tokens", 4}}}}
        .dump();
  }
  if (path == "/v1/completions") {
    return Json{{"id", "cmpl-1"},
                {"object", "text_completion"},
                {"choices",
                 {{{"index", 0}, {"text", text}, {"finish_reason", "stop"}}}},
                {"usage", {{"prompt_tokens", 3}, {"completion_tokens", 4}}}}
        .dump();
  }
  return Json{{"id", "chatcmpl-1"},
              {"object", "chat.completion"},
              {"choices",
               {{{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", text}}},
                 {"finish_reason", "stop"}}}},
              {"usage", {{"prompt_tokens", 3}, {"completion_tokens", 4}}}}
      .dump();
}

// An in-process provider: records every request and answers from a script
// (then with echoing success bodies).
class StubServer {
 public:
  StubServer() {
    http_.server().Post(
        R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
          Handle(req, res);
        });
    http_.Start();
  }
  // Before the members the handlers use are gone.
  ~StubServer() { http_.Stop(); }

  std::string base_url() const { return http_.base_url(); }

  // The next calls answer with these replies, in order.
  void Script(std::vector<Reply> replies) {
    std::lock_guard<std::mutex> lock(mu_);
    for (Reply& r : replies) script_.push_back(std::move(r));
  }

  std::vector<Seen> seen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(seen_.size());
  }
  Seen last() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_.empty() ? Seen() : seen_.back();
  }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    Reply reply;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back({req.path, req.headers, req.body});
      if (!script_.empty()) {
        reply = std::move(script_.front());
        script_.pop_front();
      }
    }
    if (reply.sleep.count() > 0) std::this_thread::sleep_for(reply.sleep);
    res.status = reply.status;
    for (const auto& [name, value] : reply.headers) {
      res.set_header(name.c_str(), value);
    }
    if (reply.body.empty() && reply.status == 200) {
      reply.body = EchoBody(req.path, Json::parse(req.body, nullptr, false));
    }
    res.set_content(reply.body, "application/json");
  }

  LocalHttpServer http_;
  mutable std::mutex mu_;
  std::deque<Reply> script_;
  std::vector<Seen> seen_;
};

// Sets (or unsets) an environment variable, restoring it on destruction.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_.has_value()) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// A port on 127.0.0.1 bound but not listening: connections are refused.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 &&
        bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      socklen_t len = sizeof(addr);
      if (getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        port_ = ntohs(addr.sin_port);
      }
    }
  }
  ~RefusingPort() {
    if (fd_ >= 0) close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class HttpModelClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A proxy from the environment must not intercept 127.0.0.1.
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  }

  HttpModelClientOptions Options(
      ProviderApi api = ProviderApi::kOpenAiChat) const {
    HttpModelClientOptions o;
    o.api = api;
    o.base_url = server_.base_url();
    o.api_key = kKey;
    o.api_key_env = "PROMPTCACHE_TEST_UNSET_KEY_VAR";
    o.timeout = absl::Seconds(10);
    o.connect_timeout = absl::Seconds(5);
    o.initial_backoff = absl::Milliseconds(1);
    o.max_backoff = absl::Milliseconds(20);
    return o;
  }

  HttpModelClient Make(const HttpModelClientOptions& o) {
    absl::StatusOr<HttpModelClient> client = HttpModelClient::Create(o);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : HttpModelClient();
  }

  StubServer server_;
};

// A request with every parameter the chat API carries.
Request RichRequest() {
  Request r = testing::MakeRequest("What's the weather in Oslo?");
  r.messages.push_back(
      {"assistant", "", "", "",
       R"([{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}])"});
  r.messages.push_back({"tool", "sunny, 21C", "", "call_1", ""});
  r.messages.push_back({"user", "And tomorrow?", "bob", "", ""});
  r.params.temperature = 0.25;
  r.params.top_p = 0.5;
  r.params.max_tokens = 77;
  r.params.stop = {"END", "STOP"};
  r.params.seed = 42;
  r.params.tools_json =
      R"([{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])";
  r.params.tool_choice_json = R"("auto")";
  r.params.response_format_json = R"({"type":"json_object"})";
  r.params.extra_json = R"({"frequency_penalty":0.5})";
  return r;
}

// The canonical form of what a sent body means, as the proxy would read it.
std::string SentCanonical(ProviderApi api, const Seen& seen,
                          const Request& original) {
  absl::StatusOr<wire::ParsedCall> call =
      wire::ParseRequestBody(api, seen.body);
  EXPECT_TRUE(call.ok()) << call.status() << "\nbody: " << seen.body;
  if (!call.ok()) return "";
  call->request.ns = original.ns;
  call->request.backend = original.backend;
  absl::StatusOr<CanonicalizedRequest> c = Canonicalize(call->request);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? c->canonical : "";
}

std::string CanonicalOf(const Request& r) {
  absl::StatusOr<CanonicalizedRequest> c = Canonicalize(r);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? c->canonical : "";
}

// ---------------------------------------------------------------------------
// OpenAI chat

TEST_F(HttpModelClientTest, OpenAiChatSendsTheRequestAndParsesTheAnswer) {
  server_.Script({{200, R"({
    "id": "chatcmpl-9", "object": "chat.completion", "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "tool_calls",
      "message": {"role": "assistant", "content": "Let me check.",
        "tool_calls": [{"id": "call_2", "type": "function",
          "function": {"name": "weather",
                       "arguments": "{\"city\":\"Oslo\",\"day\":1}"}}]}}],
    "usage": {"prompt_tokens": 120, "completion_tokens": 30,
              "total_tokens": 150,
              "prompt_tokens_details": {"cached_tokens": 64}}})"}});
  const HttpModelClient client = Make(Options());
  EXPECT_EQ(client.endpoint(), server_.base_url() + "/v1/chat/completions");
  const Request request = RichRequest();
  absl::StatusOr<Response> answer = client.Complete(request);
  ASSERT_TRUE(answer.ok()) << answer.status();

  ASSERT_EQ(server_.calls(), 1);
  const Seen seen = server_.last();
  EXPECT_EQ(seen.path, "/v1/chat/completions");
  EXPECT_EQ(seen.Header("Authorization"), absl::StrCat("Bearer ", kKey));
  EXPECT_EQ(seen.Header("x-api-key"), std::nullopt);
  EXPECT_THAT(seen.Header("Content-Type").value_or(""),
              HasSubstr("application/json"));
  // Everything that determines the answer reached the server.
  EXPECT_EQ(SentCanonical(ProviderApi::kOpenAiChat, seen, request),
            CanonicalOf(request));
  const Json body = seen.json();
  EXPECT_EQ(body["model"], "gpt-4o-mini");
  EXPECT_EQ(body["temperature"], 0.25);
  EXPECT_EQ(body["stop"], Json::array({"END", "STOP"}));
  EXPECT_EQ(body["tools"][0]["function"]["name"], "weather");
  EXPECT_EQ(body["messages"].size(), 5u);
  EXPECT_FALSE(body.contains("stream"));
  // The namespace and backend are not sent.
  EXPECT_THAT(seen.body, Not(HasSubstr("tenant-a")));

  EXPECT_EQ(answer->text, "Let me check.");
  EXPECT_EQ(answer->finish_reason, "tool_calls");
  EXPECT_EQ(answer->usage.input_tokens, 120);
  EXPECT_EQ(answer->usage.output_tokens, 30);
  EXPECT_EQ(answer->usage.cached_input_tokens, 64);
  EXPECT_FALSE(answer->usage.estimated);
  const Json calls = Json::parse(answer->tool_calls_json);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["id"], "call_2");
  EXPECT_EQ(calls[0]["function"]["name"], "weather");
  EXPECT_EQ(Json::parse(calls[0]["function"]["arguments"].get<std::string>()),
            Json::parse(R"({"city":"Oslo","day":1})"));
  EXPECT_GT(answer->upstream_latency, absl::ZeroDuration());
}

TEST_F(HttpModelClientTest, MinimalRequestSendsOnlyWhatItHas) {
  const HttpModelClient client = Make(Options());
  Request request = testing::MakeRequest("Hi", "ns", "local-model", "vllm");
  absl::StatusOr<Response> answer = client.Complete(request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->text, "echo: Hi");
  EXPECT_EQ(answer->finish_reason, "stop");
  const Seen seen = server_.last();
  EXPECT_EQ(SentCanonical(ProviderApi::kOpenAiChat, seen, request),
            CanonicalOf(request));
  const Json body = seen.json();
  for (const char* absent :
       {"temperature", "top_p", "max_tokens", "max_completion_tokens", "stop",
        "seed", "tools"}) {
    EXPECT_FALSE(body.contains(absent)) << absent;
  }
}

TEST_F(HttpModelClientTest, BaseUrlWithV1OrTrailingSlashWorks) {
  for (const std::string suffix : {"/v1", "/", "/v1/", "//"}) {
    HttpModelClientOptions o = Options();
    o.base_url = server_.base_url() + suffix;
    const HttpModelClient client = Make(o);
    EXPECT_EQ(client.endpoint(), server_.base_url() + "/v1/chat/completions")
        << suffix;
    absl::StatusOr<Response> answer =
        client.Complete(testing::MakeRequest("Hi " + suffix));
    ASSERT_TRUE(answer.ok()) << suffix << ": " << answer.status();
    EXPECT_EQ(server_.last().path, "/v1/chat/completions") << suffix;
  }
  EXPECT_EQ(server_.calls(), 4);
}

TEST_F(HttpModelClientTest, ExtraHeadersAreSent) {
  HttpModelClientOptions o = Options();
  o.extra_headers = {{"OpenAI-Organization", "org-123"}};
  const HttpModelClient client = Make(o);
  ASSERT_TRUE(client.Complete(testing::MakeRequest("Hi")).ok());
  EXPECT_EQ(server_.last().Header("OpenAI-Organization"), "org-123");
}

// ---------------------------------------------------------------------------
// Legacy completions

TEST_F(HttpModelClientTest, LegacyCompletionsSendsPrompt) {
  server_.Script({{200, R"({"id":"cmpl-1","object":"text_completion",
    "choices":[{"index":0,"text":" world","finish_reason":"length"}],
    "usage":{"prompt_tokens":2,"completion_tokens":16}})"}});
  const HttpModelClient client = Make(Options(ProviderApi::kOpenAiCompletions));
  EXPECT_EQ(client.endpoint(), server_.base_url() + "/v1/completions");
  Request request;
  request.backend = "openai";
  request.model = "gpt-3.5-turbo-instruct";
  request.messages.push_back({"user", "Hello", "", "", ""});
  request.params.max_tokens = 16;
  request.params.temperature = 0;
  request.params.stop = {"\n"};
  absl::StatusOr<Response> answer = client.Complete(request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  const Seen seen = server_.last();
  EXPECT_EQ(seen.path, "/v1/completions");
  EXPECT_EQ(seen.Header("Authorization"), absl::StrCat("Bearer ", kKey));
  const Json body = seen.json();
  EXPECT_EQ(body["model"], "gpt-3.5-turbo-instruct");
  EXPECT_EQ(body["prompt"], "Hello");
  EXPECT_EQ(body["max_tokens"], 16);
  EXPECT_EQ(body["temperature"], 0);
  EXPECT_EQ(body["stop"], Json::array({"\n"}));
  EXPECT_FALSE(body.contains("messages"));
  // Read back as the proxy would, the body means the same call.
  absl::StatusOr<wire::ParsedCall> call =
      wire::ParseRequestBody(ProviderApi::kOpenAiCompletions, seen.body);
  ASSERT_TRUE(call.ok()) << call.status();
  ASSERT_EQ(call->request.messages.size(), 1u);
  EXPECT_EQ(call->request.messages[0].content, "Hello");
  EXPECT_EQ(call->request.params.max_tokens, 16);
  EXPECT_EQ(call->request.params.stop, std::vector<std::string>{"\n"});

  EXPECT_EQ(answer->text, " world");
  EXPECT_EQ(answer->finish_reason, "length");
  EXPECT_EQ(answer->usage.input_tokens, 2);
  EXPECT_EQ(answer->usage.output_tokens, 16);
}

// ---------------------------------------------------------------------------
// Anthropic Messages

TEST_F(HttpModelClientTest, AnthropicMessagesHeadersBodyAndUsage) {
  server_.Script({{200, R"({
    "id": "msg_01", "type": "message", "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
      {"type": "text", "text": "Checking. "},
      {"type": "tool_use", "id": "toolu_1", "name": "weather",
       "input": {"city": "Oslo"}},
      {"type": "text", "text": "Done."}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 10, "cache_read_input_tokens": 100,
              "cache_creation_input_tokens": 5, "output_tokens": 7}})"}});
  HttpModelClientOptions o = Options(ProviderApi::kAnthropicMessages);
  o.default_max_tokens = 321;
  const HttpModelClient client = Make(o);
  EXPECT_EQ(client.endpoint(), server_.base_url() + "/v1/messages");
  Request request = testing::MakeRequest("Weather in Oslo?", "tenant-a",
                                         "claude-sonnet-4-5", "anthropic");
  request.params.temperature = 0.5;
  request.params.stop = {"END"};
  absl::StatusOr<Response> answer = client.Complete(request);
  ASSERT_TRUE(answer.ok()) << answer.status();

  const Seen seen = server_.last();
  EXPECT_EQ(seen.path, "/v1/messages");
  EXPECT_EQ(seen.Header("x-api-key"), kKey);
  EXPECT_EQ(seen.Header("anthropic-version"), "2023-06-01");
  EXPECT_EQ(seen.Header("Authorization"), std::nullopt);
  const Json body = seen.json();
  EXPECT_EQ(body["model"], "claude-sonnet-4-5");
  EXPECT_EQ(body["max_tokens"], 321);
  EXPECT_EQ(body["system"], "You are a helpful assistant.");
  ASSERT_EQ(body["messages"].size(), 1u);
  EXPECT_EQ(body["messages"][0]["role"], "user");
  EXPECT_EQ(body["stop_sequences"], Json::array({"END"}));
  // Read back, it is the same call with the default max_tokens filled in.
  Request expected = request;
  expected.params.max_tokens = 321;
  EXPECT_EQ(SentCanonical(ProviderApi::kAnthropicMessages, seen, request),
            CanonicalOf(expected));

  EXPECT_EQ(answer->text, "Checking. Done.");
  EXPECT_EQ(answer->finish_reason, "tool_use");
  // Anthropic's input_tokens excludes the prompt cache; Usage includes it.
  EXPECT_EQ(answer->usage.input_tokens, 115);
  EXPECT_EQ(answer->usage.cached_input_tokens, 100);
  EXPECT_EQ(answer->usage.cache_write_input_tokens, 5);
  EXPECT_EQ(answer->usage.output_tokens, 7);
  const Json calls = Json::parse(answer->tool_calls_json);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["id"], "toolu_1");
  EXPECT_EQ(calls[0]["function"]["name"], "weather");
  EXPECT_EQ(Json::parse(calls[0]["function"]["arguments"].get<std::string>()),
            Json::parse(R"({"city":"Oslo"})"));
}

TEST_F(HttpModelClientTest, AnthropicRequestMaxTokensAndVersionOverride) {
  HttpModelClientOptions o = Options(ProviderApi::kAnthropicMessages);
  o.anthropic_version = "2099-01-01";
  const HttpModelClient client = Make(o);
  Request request = testing::MakeRequest("Hi", "t", "claude-x", "anthropic");
  request.params.max_tokens = 12;
  absl::StatusOr<Response> answer = client.Complete(request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->text, "echo: Hi");
  EXPECT_EQ(answer->finish_reason, "end_turn");
  EXPECT_EQ(server_.last().json()["max_tokens"], 12);
  EXPECT_EQ(server_.last().Header("anthropic-version"), "2099-01-01");
}

// ---------------------------------------------------------------------------
// Keys from the environment

TEST_F(HttpModelClientTest, KeyFromNamedEnvironmentVariable) {
  ScopedEnv env("PROMPTCACHE_TEST_MODEL_KEY", "sk-from-env");
  HttpModelClientOptions o = Options();
  o.api_key.clear();
  o.api_key_env = "PROMPTCACHE_TEST_MODEL_KEY";
  const HttpModelClient client = Make(o);
  ASSERT_TRUE(client.Complete(testing::MakeRequest("Hi")).ok());
  EXPECT_EQ(server_.last().Header("Authorization"), "Bearer sk-from-env");
}

TEST_F(HttpModelClientTest, ExplicitKeyWinsOverEnvironment) {
  ScopedEnv env("PROMPTCACHE_TEST_MODEL_KEY", "sk-from-env");
  HttpModelClientOptions o = Options();
  o.api_key_env = "PROMPTCACHE_TEST_MODEL_KEY";
  const HttpModelClient client = Make(o);
  ASSERT_TRUE(client.Complete(testing::MakeRequest("Hi")).ok());
  EXPECT_EQ(server_.last().Header("Authorization"),
            absl::StrCat("Bearer ", kKey));
}

TEST_F(HttpModelClientTest, DefaultEnvironmentVariablesByApi) {
  ScopedEnv openai("OPENAI_API_KEY", "sk-openai-env");
  ScopedEnv anthropic("ANTHROPIC_API_KEY", "sk-ant-env");
  HttpModelClientOptions o = Options();
  o.api_key.clear();
  o.api_key_env.clear();
  const HttpModelClient chat = Make(o);
  ASSERT_TRUE(chat.Complete(testing::MakeRequest("Hi")).ok());
  EXPECT_EQ(server_.last().Header("Authorization"), "Bearer sk-openai-env");

  o.api = ProviderApi::kOpenAiCompletions;
  const HttpModelClient legacy = Make(o);
  ASSERT_TRUE(legacy.Complete(testing::MakeRequest("Hi")).ok());
  EXPECT_EQ(server_.last().Header("Authorization"), "Bearer sk-openai-env");

  o.api = ProviderApi::kAnthropicMessages;
  const HttpModelClient claude = Make(o);
  ASSERT_TRUE(
      claude.Complete(testing::MakeRequest("Hi", "t", "claude-x", "anthropic"))
          .ok());
  EXPECT_EQ(server_.last().Header("x-api-key"), "sk-ant-env");
  EXPECT_EQ(server_.last().Header("Authorization"), std::nullopt);
}

TEST_F(HttpModelClientTest, KeyIsReadAtCreate) {
  std::optional<HttpModelClient> client;
  {
    ScopedEnv env("PROMPTCACHE_TEST_MODEL_KEY", "sk-at-create");
    HttpModelClientOptions o = Options();
    o.api_key.clear();
    o.api_key_env = "PROMPTCACHE_TEST_MODEL_KEY";
    client = Make(o);
  }
  ASSERT_TRUE(client->Complete(testing::MakeRequest("Hi")).ok());
  EXPECT_EQ(server_.last().Header("Authorization"), "Bearer sk-at-create");
}

TEST_F(HttpModelClientTest, NoKeyNoAuthHeader) {
  ScopedEnv openai("OPENAI_API_KEY", nullptr);
  ScopedEnv anthropic("ANTHROPIC_API_KEY", nullptr);
  for (ProviderApi api :
       {ProviderApi::kOpenAiChat, ProviderApi::kAnthropicMessages}) {
    for (const bool default_env : {false, true}) {
      HttpModelClientOptions o = Options(api);
      o.api_key.clear();
      if (default_env) o.api_key_env.clear();
      const HttpModelClient client = Make(o);
      ASSERT_TRUE(client.Complete(testing::MakeRequest("Hi")).ok());
      const Seen seen = server_.last();
      EXPECT_EQ(seen.Header("Authorization"), std::nullopt);
      EXPECT_EQ(seen.Header("x-api-key"), std::nullopt);
    }
  }
  EXPECT_EQ(server_.calls(), 4);
}

// ---------------------------------------------------------------------------
// Retries and error mapping

TEST_F(HttpModelClientTest, RateLimitedWithRetryAfterZeroThenSuccess) {
  server_.Script({{429,
                   R"({"error":{"message":"Rate limit reached"}})",
                   {{"retry-after", "0"}}}});
  const HttpModelClient client = Make(Options());
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->text, "echo: Hi");
  EXPECT_EQ(server_.calls(), 2);
}

TEST_F(HttpModelClientTest, TwoServerErrorsThenSuccessWithTwoRetries) {
  server_.Script({{503, "overloaded"}, {503, "overloaded"}});
  HttpModelClientOptions o = Options();
  o.max_retries = 2;
  const HttpModelClient client = Make(o);
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(server_.calls(), 3);
  // Every attempt sent the same call.
  const std::vector<Seen> seen = server_.seen();
  EXPECT_EQ(seen[0].body, seen[2].body);
}

TEST_F(HttpModelClientTest, RetriesExhaustedReturnsTheLastError) {
  server_.Script({{503, "busy 1"}, {502, "busy 2"}, {500, "busy 3"}});
  HttpModelClientOptions o = Options();
  o.max_retries = 2;
  const HttpModelClient client = Make(o);
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(answer.status()), HasSubstr("HTTP 500"));
  EXPECT_THAT(Msg(answer.status()), HasSubstr("busy 3"));
  EXPECT_EQ(server_.calls(), 3);
}

TEST_F(HttpModelClientTest, ServerErrorWithoutRetriesIsUnavailable) {
  server_.Script({{500, R"({"error":{"message":"internal boom"}})"}});
  HttpModelClientOptions o = Options();
  o.max_retries = 0;
  const HttpModelClient client = Make(o);
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(answer.status()), HasSubstr("internal boom"));
  EXPECT_EQ(server_.calls(), 1);
}

TEST_F(HttpModelClientTest, BadRequestIsNotRetried) {
  server_.Script(
      {{400,
        R"({"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error"}})"}});
  const HttpModelClient client = Make(Options());
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(answer.status()), HasSubstr(client.endpoint()));
  EXPECT_THAT(Msg(answer.status()), HasSubstr("HTTP 400"));
  EXPECT_THAT(Msg(answer.status()),
              HasSubstr("maximum context length is 8192 tokens"));
  EXPECT_THAT(Msg(answer.status()), HasSubstr("gpt-4o-mini"));
  EXPECT_EQ(server_.calls(), 1);
}

TEST_F(HttpModelClientTest, UnauthorizedIsUnauthenticated) {
  server_.Script({{401, wire::RenderErrorBody(ProviderApi::kOpenAiChat, 401,
                                              "Incorrect API key provided")}});
  const HttpModelClient client = Make(Options());
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Msg(answer.status()), HasSubstr("HTTP 401"));
  EXPECT_THAT(Msg(answer.status()), HasSubstr("Incorrect API key provided"));
  EXPECT_EQ(server_.calls(), 1);
}

TEST_F(HttpModelClientTest, ForbiddenIsPermissionDenied) {
  server_.Script({{403, R"({"error":{"message":"region not supported"}})"}});
  const HttpModelClient client = Make(Options());
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(server_.calls(), 1);
}

TEST_F(HttpModelClientTest, UnknownModelIsNotFoundWithProviderMessage) {
  server_.Script({{404, wire::RenderErrorBody(
                            ProviderApi::kOpenAiChat, 404,
                            "The model `gpt-9` does not exist or you do not "
                            "have access to it.")}});
  const HttpModelClient client = Make(Options());
  absl::StatusOr<Response> answer =
      client.Complete(testing::MakeRequest("Hi", "t", "gpt-9"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(answer.status()),
              HasSubstr("The model `gpt-9` does not exist"));
  EXPECT_THAT(Msg(answer.status()), HasSubstr("HTTP 404"));
  EXPECT_EQ(server_.calls(), 1);
}

TEST_F(HttpModelClientTest, AnthropicErrorBodyMessageIsQuoted) {
  server_.Script(
      {{400, wire::RenderErrorBody(ProviderApi::kAnthropicMessages, 400,
                                   "max_tokens: must be at most 8192")}});
  const HttpModelClient client = Make(Options(ProviderApi::kAnthropicMessages));
  absl::StatusOr<Response> answer =
      client.Complete(testing::MakeRequest("Hi", "t", "claude-x", "anthropic"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(answer.status()),
              HasSubstr("max_tokens: must be at most 8192"));
  EXPECT_THAT(Msg(answer.status()), HasSubstr("/v1/messages"));
}

TEST_F(HttpModelClientTest, RateLimitExhaustedIsResourceExhausted) {
  server_.Script({{429, R"({"error":{"message":"quota"}})"},
                  {429, R"({"error":{"message":"quota"}})"}});
  HttpModelClientOptions o = Options();
  o.max_retries = 1;
  const HttpModelClient client = Make(o);
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(server_.calls(), 2);
}

TEST_F(HttpModelClientTest, RetryAfterMsIsHonoredBeforeRetryAfter) {
  // Without the server's hint, the backoff would be 15 s or more; a
  // Retry-After of an hour would be capped at a minute.
  server_.Script({{429,
                   R"({"error":{"message":"slow down"}})",
                   {{"retry-after-ms", "5"}, {"retry-after", "3600"}}}});
  HttpModelClientOptions o = Options();
  o.initial_backoff = absl::Seconds(30);
  o.max_backoff = absl::Seconds(60);
  const HttpModelClient client = Make(o);
  const absl::Time start = absl::Now();
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(server_.calls(), 2);
}

TEST_F(HttpModelClientTest, RetryAfterIsCappedAtMaxBackoff) {
  server_.Script({{503, "maintenance", {{"retry-after", "3600"}}},
                  {429, "later", {{"Retry-After", "3600"}}}});
  HttpModelClientOptions o = Options();
  o.max_backoff = absl::Milliseconds(50);
  const HttpModelClient client = Make(o);
  const absl::Time start = absl::Now();
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_EQ(server_.calls(), 3);
}

// ---------------------------------------------------------------------------
// Secrets

TEST_F(HttpModelClientTest, EchoedKeyNeverAppearsInErrors) {
  const std::string echo =
      Json{{"error",
            {{"message", absl::StrCat("Incorrect API key provided: ", kKey)}}}}
          .dump();
  server_.Script({{401, echo}});
  const HttpModelClient client = Make(Options());
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(Msg(answer.status()), Not(HasSubstr(kKey)));
  EXPECT_THAT(Msg(answer.status()), HasSubstr("[redacted]"));

  // Anthropic, as plain text, after retries.
  server_.Script({{500, absl::StrCat("bad key ", kKey)},
                  {500, absl::StrCat("bad key ", kKey)}});
  HttpModelClientOptions o = Options(ProviderApi::kAnthropicMessages);
  o.max_retries = 1;
  const HttpModelClient claude = Make(o);
  answer =
      claude.Complete(testing::MakeRequest("Hi", "t", "claude-x", "anthropic"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(answer.status()), Not(HasSubstr(kKey)));
  EXPECT_THAT(Msg(answer.status()), HasSubstr("[redacted]"));

  // In a success body that is not an answer.
  server_.Script({{200, Json{{"error", {{"message", kKey}}}}.dump()}});
  answer = client.Complete(testing::MakeRequest("Hi"));
  EXPECT_FALSE(answer.ok());
  EXPECT_THAT(Msg(answer.status()), Not(HasSubstr(kKey)));
}

TEST_F(HttpModelClientTest, KeyCutByTheQuoteLimitDoesNotLeak) {
  // Error text is capped (about 400 bytes); a key echoed across the cut
  // must not leave its first part in the message.
  for (size_t pad : {370u, 380u, 390u, 395u}) {
    server_.Script(
        {{401, Json{{"error",
                     {{"message", absl::StrCat(std::string(pad, 'x'), " key ",
                                               kKey, " is invalid")}}}}
                   .dump()}});
    const HttpModelClient client = Make(Options());
    absl::StatusOr<Response> answer =
        client.Complete(testing::MakeRequest("Hi"));
    EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnauthenticated);
    // The secret part of the key (after its "sk-test-" prefix).
    EXPECT_THAT(Msg(answer.status()), Not(HasSubstr("0123456789")))
        << "pad " << pad;
  }
}

// ---------------------------------------------------------------------------
// Transport failures

TEST_F(HttpModelClientTest, SlowServerIsDeadlineExceeded) {
  server_.Script({{200, "", {}, std::chrono::milliseconds(1000)}});
  HttpModelClientOptions o = Options();
  o.timeout = absl::Milliseconds(200);
  o.max_retries = 0;
  const HttpModelClient client = Make(o);
  const absl::Time start = absl::Now();
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kDeadlineExceeded)
      << answer.status();
  EXPECT_THAT(Msg(answer.status()), HasSubstr(client.endpoint()));
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_EQ(server_.calls(), 1);
}

TEST_F(HttpModelClientTest, ConnectionRefusedIsUnavailableAfterRetries) {
  RefusingPort refusing;
  ASSERT_GT(refusing.port(), 0);
  HttpModelClientOptions o = Options();
  o.base_url = absl::StrCat("http://127.0.0.1:", refusing.port());
  o.max_retries = 2;
  const HttpModelClient client = Make(o);
  absl::StatusOr<Response> answer = client.Complete(testing::MakeRequest("Hi"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable)
      << answer.status();
  EXPECT_THAT(Msg(answer.status()), HasSubstr("3 attempts"));
  EXPECT_THAT(Msg(answer.status()), HasSubstr(client.endpoint()));
  EXPECT_THAT(Msg(answer.status()), Not(HasSubstr(kKey)));
}

TEST_F(HttpModelClientTest, MalformedSuccessBodiesAreInvalidArgument) {
  struct Case {
    ProviderApi api;
    std::string body;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {ProviderApi::kOpenAiChat, "<html>502 Bad Gateway</html>",
       "not valid JSON"},
      {ProviderApi::kOpenAiChat, "[1,2]", "JSON object"},
      {ProviderApi::kOpenAiChat, R"({"object":"chat.completion"})", "choices"},
      {ProviderApi::kOpenAiChat, R"({"choices":[]})", "choices"},
      {ProviderApi::kOpenAiChat, R"({"choices":[{"message":"hi"}]})",
       "choices[0].message"},
      {ProviderApi::kOpenAiChat, R"({"choices":[{"message":{"content":5}}]})",
       "choices[0].message.content"},
      {ProviderApi::kOpenAiChat,
       R"({"choices":[{"message":{"content":"x"}}],"usage":"many"})", "usage"},
      {ProviderApi::kOpenAiCompletions, R"({"choices":[{"text":7}]})",
       "choices[0].text"},
      {ProviderApi::kAnthropicMessages, R"({"type":"message"})", "content"},
      {ProviderApi::kAnthropicMessages,
       R"({"content":[{"type":"text","text":1}]})", "content[0].text"},
      {ProviderApi::kAnthropicMessages, "", "not valid JSON"},
  };
  for (const Case& c : cases) {
    server_.Script({{200, c.body.empty() ? " " : c.body}});
    const HttpModelClient client = Make(Options(c.api));
    absl::StatusOr<Response> answer = client.Complete(
        testing::MakeRequest("Hi", "t", "some-model", "openai"));
    EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument)
        << c.body << ": " << answer.status();
    EXPECT_THAT(Msg(answer.status()), HasSubstr(c.problem)) << c.body;
    EXPECT_THAT(Msg(answer.status()), HasSubstr(client.endpoint())) << c.body;
  }
  EXPECT_EQ(server_.calls(), static_cast<int>(cases.size()));
}

// ---------------------------------------------------------------------------
// Options

TEST(HttpModelClientOptionsTest, InvalidOptionsNameTheField) {
  HttpModelClientOptions base;
  base.base_url = "http://127.0.0.1:1";
  base.api_key = kKey;
  struct Case {
    std::string name;
    HttpModelClientOptions options;
    std::string field;
  };
  std::vector<Case> cases;
  auto add = [&](const std::string& name, auto change,
                 const std::string& field) {
    HttpModelClientOptions o = base;
    change(o);
    cases.push_back({name, o, field});
  };
  add(
      "ftp scheme", [](auto& o) { o.base_url = "ftp://example.com"; },
      "base_url");
  add(
      "no scheme", [](auto& o) { o.base_url = "api.openai.com"; }, "base_url");
  add(
      "empty url", [](auto& o) { o.base_url = ""; }, "base_url");
  add(
      "negative retries", [](auto& o) { o.max_retries = -1; }, "max_retries");
  add(
      "zero timeout", [](auto& o) { o.timeout = absl::ZeroDuration(); },
      "timeout");
  add(
      "negative connect timeout",
      [](auto& o) { o.connect_timeout = absl::Seconds(-1); }, "timeout");
  add(
      "negative backoff",
      [](auto& o) { o.initial_backoff = absl::Milliseconds(-1); }, "backoff");
  add(
      "zero default_max_tokens", [](auto& o) { o.default_max_tokens = 0; },
      "default_max_tokens");
  add(
      "key with newline",
      [](auto& o) { o.api_key = absl::StrCat(kKey, "\r\nX-Evil: 1"); },
      "API key");
  add(
      "header injection",
      [](auto& o) {
        o.extra_headers = {{"X-Org", "a\r\nX-Evil: 1"}};
      },
      "extra header");
  for (const Case& c : cases) {
    absl::StatusOr<HttpModelClient> client = HttpModelClient::Create(c.options);
    ASSERT_FALSE(client.ok()) << c.name;
    EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument)
        << c.name;
    EXPECT_THAT(Msg(client.status()), HasSubstr(c.field)) << c.name;
    EXPECT_THAT(Msg(client.status()), Not(HasSubstr(kKey))) << c.name;
  }
}

TEST(HttpModelClientOptionsTest, KeyWithNewlineFromEnvironmentIsRejected) {
  ScopedEnv env("PROMPTCACHE_TEST_MODEL_KEY", "sk-env-secret\nX-Evil: 1");
  HttpModelClientOptions o;
  o.base_url = "http://127.0.0.1:1";
  o.api_key_env = "PROMPTCACHE_TEST_MODEL_KEY";
  absl::StatusOr<HttpModelClient> client = HttpModelClient::Create(o);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(client.status()), HasSubstr("PROMPTCACHE_TEST_MODEL_KEY"));
  EXPECT_THAT(Msg(client.status()), Not(HasSubstr("sk-env-secret")));
}

TEST(HttpModelClientOptionsTest, ValidOptionsKeepTheirValues) {
  HttpModelClientOptions o;
  o.api = ProviderApi::kAnthropicMessages;
  o.base_url = "  HTTPS://api.anthropic.com/v1/  ";
  o.api_key = "k";
  absl::StatusOr<HttpModelClient> client = HttpModelClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->endpoint(), "HTTPS://api.anthropic.com/v1/messages");
  EXPECT_EQ(client->options().api_key, "k");
  EXPECT_EQ(client->options().default_max_tokens, 4096);
  EXPECT_EQ(client->options().anthropic_version, "2023-06-01");
}

// ---------------------------------------------------------------------------
// As the upstream of a CachedClient

class HttpModelClientCacheTest : public HttpModelClientTest {
 protected:
  void SetUp() override {
    HttpModelClientTest::SetUp();
    promptcache::Options o;
    o.stats_flush_interval = absl::InfiniteDuration();
    absl::StatusOr<std::unique_ptr<Cache>> cache = Cache::Open(dir_.path(), o);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
  }
  testing::TempDir dir_;
  std::unique_ptr<Cache> cache_;
};

TEST_F(HttpModelClientCacheTest, MissThenExactHitDoesNotReachTheServer) {
  const HttpModelClient upstream = Make(HttpModelClientTest::Options());
  CachedClient client(*cache_, upstream);
  const Request q = testing::MakeRequest("How do I rotate my API key?");
  absl::StatusOr<Response> first = client.Complete(q);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->cache_status, CacheStatus::kMiss);
  EXPECT_TRUE(first->stored);
  EXPECT_EQ(first->text, "echo: How do I rotate my API key?");
  EXPECT_EQ(server_.calls(), 1);

  absl::StatusOr<Response> second = client.Complete(q);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->cache_status, CacheStatus::kExactHit);
  EXPECT_EQ(second->text, first->text);
  EXPECT_EQ(server_.calls(), 1);

  // Errors pass through and are not cached.
  server_.Script({{400, R"({"error":{"message":"bad"}})"}});
  const Request other = testing::MakeRequest("Something else");
  EXPECT_EQ(client.Complete(other).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<Response> retry = client.Complete(other);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(server_.calls(), 3);
}

TEST_F(HttpModelClientCacheTest, IncompleteAnswerIsReturnedButNotCached) {
  const std::string truncated = R"({"choices":[{"index":0,
    "message":{"role":"assistant","content":"Once upon a"},
    "finish_reason":"length"}],
    "usage":{"prompt_tokens":5,"completion_tokens":3}})";
  server_.Script({{200, truncated}, {200, truncated}});
  const HttpModelClient upstream = Make(HttpModelClientTest::Options());
  CachedClient client(*cache_, upstream);
  const Request q = testing::MakeRequest("Write a novel");
  absl::StatusOr<Response> first = client.Complete(q);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->text, "Once upon a");
  EXPECT_EQ(first->finish_reason, "length");
  EXPECT_FALSE(first->stored);
  EXPECT_EQ(server_.calls(), 1);
  absl::StatusOr<Response> second = client.Complete(q);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(server_.calls(), 2);
}

// ---------------------------------------------------------------------------
// Concurrency

TEST_F(HttpModelClientTest, ConcurrentCallsOnOneClientAllSucceed) {
  constexpr int kThreads = 8;
  const HttpModelClient client = Make(Options());
  std::vector<absl::StatusOr<Response>> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&client, &results, i] {
      results[static_cast<size_t>(i)] =
          client.Complete(testing::MakeRequest(absl::StrCat("question ", i)));
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    const absl::StatusOr<Response>& r = results[static_cast<size_t>(i)];
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    EXPECT_EQ(r->text, absl::StrCat("echo: question ", i));
  }
  EXPECT_EQ(server_.calls(), kThreads);
}

}  // namespace
}  // namespace promptcache
