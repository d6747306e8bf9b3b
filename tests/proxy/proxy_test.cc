// The proxy end to end over loopback: an httplib stub plays the paid
// upstream, httplib clients (and raw sockets) play the SDKs.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "local_http_server.h"
#include "nlohmann/json.hpp"
#include "promptcache/builtin_embedder.h"
#include "promptcache/proxy_server.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::LocalHttpServer;

using Json = nlohmann::json;
using testing::TempDir;

// The paid model: counts calls and answers "Answer #n to: <text>".
class StubUpstream {
 public:
  StubUpstream() {
    httplib::Server& server_ = http_.server();
    server_.Post("/v1/chat/completions",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   Chat(req, res);
                 });
    server_.Post("/v1/messages",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   Messages(req, res);
                 });
    server_.Get("/v1/models", [this](const httplib::Request& req,
                                     httplib::Response& res) {
      Record(req);
      res.set_content(R"({"object":"list","data":[{"id":"gpt-4o-mini"}]})",
                      "application/json");
    });
    http_.Start();
  }
  // Before the members the handlers use are gone.
  ~StubUpstream() { http_.Stop(); }
  int port() const { return http_.port(); }
  int calls() const { return calls_.load(); }
  std::string last_auth() {
    absl::MutexLock lock(&mu_);
    return last_auth_;
  }
  std::string last_body() {
    absl::MutexLock lock(&mu_);
    return last_body_;
  }
  std::string last_org() {
    absl::MutexLock lock(&mu_);
    return last_org_;
  }
  // Set when a streamed answer could not be written (client went away).
  bool stream_broken() const { return stream_broken_.load(); }

 private:
  int Record(const httplib::Request& req) {
    absl::MutexLock lock(&mu_);
    last_auth_ = req.has_header("x-api-key")
                     ? req.get_header_value("x-api-key")
                     : req.get_header_value("Authorization");
    last_body_ = req.body;
    last_org_ = absl::StrCat(req.get_header_value("OpenAI-Organization"), " x",
                             req.get_header_value_count("OpenAI-Organization"));
    return ++calls_;
  }

  static std::string LastText(const Json& body) {
    const Json& last = body["messages"].back();
    if (last["content"].is_string()) return last["content"];
    return last["content"][0]["text"];
  }

  void Chat(const httplib::Request& req, httplib::Response& res) {
    const int n = Record(req);
    const Json body = Json::parse(req.body);
    const std::string model = body["model"];
    if (model == "no-such-model") {
      res.status = 404;
      res.set_content(
          R"({"error":{"message":"The model `no-such-model` does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}})",
          "application/json");
      return;
    }
    if (model == "hanging-model") {
      // Longer than a stream's idle limit, which curl counts in whole
      // seconds (at least 1).
      std::this_thread::sleep_for(std::chrono::milliseconds(2500));
      res.set_content(R"({"error":{"message":"too late"}})",
                      "application/json");
      return;
    }
    if (model == "html-error-model") {
      // A gateway in front of the provider, failing.
      res.status = 502;
      res.set_content("<html><body><h1>502 Bad Gateway</h1></body></html>",
                      "text/html");
      return;
    }
    if (model == "array-content-model") {
      // Some OpenAI-compatible servers answer with content parts.
      res.set_content(
          R"({"id":"x","object":"chat.completion","created":1,"model":"m",)"
          R"("choices":[{"index":0,"message":{"role":"assistant","content":)"
          R"([{"type":"text","text":"parts"}]},"finish_reason":"stop"}]})",
          "application/json");
      return;
    }
    if (model == "echo-key-model") {
      res.status = 401;
      res.set_content(
          Json({{"error",
                 {{"message", "Incorrect API key provided: " +
                                  req.get_header_value("Authorization")},
                  {"type", "invalid_request_error"}}}})
              .dump(),
          "application/json");
      return;
    }
    const std::string text = LastText(body);
    const std::string answer = absl::StrCat("Answer #", n, " to: ", text);
    const bool slow = absl::StrContains(text, "SLOW");
    if (!body.value("stream", false)) {
      if (slow) absl::SleepFor(absl::Milliseconds(300));
      Json out = {{"id", "chatcmpl-1"},
                  {"object", "chat.completion"},
                  {"created", 1},
                  {"model", model},
                  {"choices",
                   {{{"index", 0},
                     {"message", {{"role", "assistant"}, {"content", answer}}},
                     {"finish_reason", "stop"}}}},
                  {"usage",
                   {{"prompt_tokens", 20},
                    {"completion_tokens", 10},
                    {"total_tokens", 30}}}};
      res.set_content(out.dump(), "application/json");
      return;
    }
    const bool abort = absl::StrContains(text, "ABORT");
    const bool usage = body.contains("stream_options") &&
                       body["stream_options"].value("include_usage", false);
    std::vector<std::string> events;
    auto chunk = [&](Json delta, Json finish) {
      Json c = {
          {"id", "chatcmpl-1"},
          {"object", "chat.completion.chunk"},
          {"created", 1},
          {"model", model},
          {"choices",
           {{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}}}};
      events.push_back("data: " + c.dump() + "\n\n");
    };
    chunk({{"role", "assistant"}, {"content", ""}}, nullptr);
    for (size_t i = 0; i < answer.size(); i += 7) {
      chunk({{"content", answer.substr(i, 7)}}, nullptr);
    }
    chunk(Json::object(), "stop");
    if (usage) {
      Json u = {{"id", "chatcmpl-1"},
                {"object", "chat.completion.chunk"},
                {"created", 1},
                {"model", model},
                {"choices", Json::array()},
                {"usage",
                 {{"prompt_tokens", 20},
                  {"completion_tokens", 10},
                  {"total_tokens", 30}}}};
      events.push_back("data: " + u.dump() + "\n\n");
    }
    events.push_back("data: [DONE]\n\n");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, events, abort, slow](size_t, httplib::DataSink& sink) {
          for (size_t i = 0; i < events.size(); ++i) {
            if (abort && i == 3) return false;  // Cut without [DONE].
            if (slow) absl::SleepFor(absl::Milliseconds(40));
            if (!sink.write(events[i].data(), events[i].size())) {
              stream_broken_ = true;
              return false;
            }
          }
          sink.done();
          return true;
        });
  }

  void Messages(const httplib::Request& req, httplib::Response& res) {
    const int n = Record(req);
    if (!req.has_header("anthropic-version")) {
      res.status = 400;
      res.set_content(
          R"({"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version header is required"}})",
          "application/json");
      return;
    }
    const Json body = Json::parse(req.body);
    const std::string answer =
        absl::StrCat("Answer #", n, " to: ", LastText(body));
    Json out = {{"id", "msg_1"},
                {"type", "message"},
                {"role", "assistant"},
                {"model", body["model"]},
                {"content", {{{"type", "text"}, {"text", answer}}}},
                {"stop_reason", "end_turn"},
                {"stop_sequence", nullptr},
                {"usage", {{"input_tokens", 20}, {"output_tokens", 10}}}};
    res.set_content(out.dump(), "application/json");
  }

  LocalHttpServer http_;
  std::atomic<int> calls_{0};
  std::atomic<bool> stream_broken_{false};
  absl::Mutex mu_;
  std::string last_auth_ ABSL_GUARDED_BY(mu_);
  std::string last_org_ ABSL_GUARDED_BY(mu_);
  std::string last_body_ ABSL_GUARDED_BY(mu_);
};

std::string ChatBody(const std::string& text, bool stream = false,
                     const std::string& model = "gpt-4o-mini") {
  Json body = {{"model", model},
               {"messages",
                {{{"role", "system"}, {"content", "You are helpful."}},
                 {{"role", "user"}, {"content", text}}}}};
  if (stream) body["stream"] = true;
  return body.dump();
}

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override { StartProxy({}); }

  void StartProxy(const std::function<void(ProxyOptions&)>& tweak) {
    server_.reset();
    cache_.reset();
    Options o;
    o.embedder = std::make_shared<BuiltinEmbedder>();
    cache_ = *Cache::Open(dir_.Sub("db"), o);
    ProxyOptions options;
    options.port = 0;
    options.openai.base_url = absl::StrCat("http://127.0.0.1:", stub_.port());
    options.anthropic.base_url = options.openai.base_url;
    // Never a real key from the test's environment: clients' keys go up.
    options.openai.api_key_env = "PROMPTCACHE_TEST_UNSET_KEY";
    options.anthropic.api_key_env = "PROMPTCACHE_TEST_UNSET_KEY";
    options.openai.initial_backoff = absl::Milliseconds(1);
    options.access_log = dir_.Sub("access.log");
    if (tweak) tweak(options);
    absl::StatusOr<std::unique_ptr<ProxyServer>> server =
        ProxyServer::Create(*cache_, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
  }

  httplib::Result Post(const std::string& path, const std::string& body,
                       httplib::Headers headers = {},
                       const std::string& key = "sk-tenant-a-secret") {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(20, 0);
    headers.emplace("Authorization", "Bearer " + key);
    return client.Post(path.c_str(), headers, body, "application/json");
  }

  TempDir dir_;
  StubUpstream stub_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<ProxyServer> server_;
};

TEST_F(ProxyTest, RepeatIsAnExactHitAndParaphraseASemanticHit) {
  auto first =
      Post("/v1/chat/completions", ChatBody("How do I reset my password?"));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(first->get_header_value("x-promptcache-status"), "MISS");
  EXPECT_EQ(stub_.calls(), 1);
  EXPECT_EQ(stub_.last_auth(), "Bearer sk-tenant-a-secret");

  auto second =
      Post("/v1/chat/completions", ChatBody("How do I reset my password?"));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->get_header_value("x-promptcache-status"), "HIT");
  EXPECT_EQ(stub_.calls(), 1);
  const Json a = Json::parse(first->body);
  const Json b = Json::parse(second->body);
  EXPECT_EQ(b["choices"][0]["message"]["content"],
            a["choices"][0]["message"]["content"]);
  EXPECT_EQ(b["object"], "chat.completion");
  double saved = 0;
  ASSERT_TRUE(absl::SimpleAtod(
      second->get_header_value("x-promptcache-saved-usd"), &saved));
  EXPECT_GT(saved, 0);
  EXPECT_EQ(second->get_header_value("x-promptcache-entry").size(), 32u);

  auto near =
      Post("/v1/chat/completions", ChatBody("how can I reset my password"));
  ASSERT_TRUE(near);
  EXPECT_EQ(near->get_header_value("x-promptcache-status"), "SEMANTIC_HIT");
  EXPECT_EQ(stub_.calls(), 1);
  double similarity = 0;
  ASSERT_TRUE(absl::SimpleAtod(
      near->get_header_value("x-promptcache-similarity"), &similarity));
  EXPECT_GT(similarity, 0.8);
  EXPECT_LT(similarity, 1.0);
  // What decided: the calibrated score against its cut, or the same words
  // in the same order.
  const std::string decision =
      near->get_header_value("x-promptcache-semantic-decision");
  EXPECT_THAT(decision, ::testing::HasSubstr("served "));
  EXPECT_THAT(decision, ::testing::ContainsRegex(">= cut|surface rewrite"));

  // A look-alike with another number is not served, and the header names
  // the veto.
  auto other = Post("/v1/chat/completions",
                    ChatBody("How do I reset my password on 2 devices?"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->get_header_value("x-promptcache-status"), "MISS");
  EXPECT_EQ(stub_.calls(), 2);
  EXPECT_THAT(other->get_header_value("x-promptcache-semantic-decision"),
              ::testing::HasSubstr("numbers differ"));
}

TEST_F(ProxyTest, TenantsModelsAndHeadersSeparateEntries) {
  ASSERT_TRUE(Post("/v1/chat/completions", ChatBody("What is RocksDB?")));
  EXPECT_EQ(stub_.calls(), 1);
  // Another API key is another tenant.
  auto other_key = Post("/v1/chat/completions", ChatBody("What is RocksDB?"),
                        {}, "sk-tenant-b-secret");
  EXPECT_EQ(other_key->get_header_value("x-promptcache-status"), "MISS");
  // Another model.
  auto other_model = Post("/v1/chat/completions",
                          ChatBody("What is RocksDB?", false, "gpt-4o"));
  EXPECT_EQ(other_model->get_header_value("x-promptcache-status"), "MISS");
  // A sub-namespace by header.
  auto team = Post("/v1/chat/completions", ChatBody("What is RocksDB?"),
                   {{"x-promptcache-namespace", "team-x"}});
  EXPECT_EQ(team->get_header_value("x-promptcache-status"), "MISS");
  EXPECT_EQ(stub_.calls(), 4);
  // Skip, refresh, semantic off.
  auto skip = Post("/v1/chat/completions", ChatBody("What is RocksDB?"),
                   {{"x-promptcache-skip", "true"}});
  EXPECT_EQ(skip->get_header_value("x-promptcache-status"), "BYPASS");
  EXPECT_EQ(stub_.calls(), 5);
  auto refresh = Post("/v1/chat/completions", ChatBody("What is RocksDB?"),
                      {{"x-promptcache-refresh", "1"}});
  EXPECT_EQ(refresh->get_header_value("x-promptcache-status"), "REFRESH");
  EXPECT_EQ(stub_.calls(), 6);
  auto after = Post("/v1/chat/completions", ChatBody("What is RocksDB?"));
  EXPECT_EQ(after->get_header_value("x-promptcache-status"), "HIT");
  EXPECT_EQ(Json::parse(after->body)["choices"][0]["message"]["content"],
            "Answer #6 to: What is RocksDB?");
  auto exact_only = Post("/v1/chat/completions", ChatBody("what is rocksdb"),
                         {{"x-promptcache-semantic", "off"}});
  EXPECT_EQ(exact_only->get_header_value("x-promptcache-status"), "MISS");
  EXPECT_EQ(stub_.calls(), 7);
}

TEST_F(ProxyTest, BadRequestsGetProviderErrors) {
  auto bad_json = Post("/v1/chat/completions", "{not json");
  ASSERT_TRUE(bad_json);
  EXPECT_EQ(bad_json->status, 400);
  Json error = Json::parse(bad_json->body);
  EXPECT_TRUE(error["error"]["message"].is_string());
  EXPECT_TRUE(error["error"]["type"].is_string());

  auto no_messages = Post("/v1/chat/completions", R"({"model":"gpt-4o-mini"})");
  EXPECT_EQ(no_messages->status, 400);
  EXPECT_THAT(
      Json::parse(no_messages->body)["error"]["message"].get<std::string>(),
      ::testing::HasSubstr("messages"));

  auto no_max_tokens = Post(
      "/v1/messages",
      R"({"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(no_max_tokens->status, 400);
  Json anthropic = Json::parse(no_max_tokens->body);
  EXPECT_EQ(anthropic["type"], "error");
  EXPECT_THAT(anthropic["error"]["message"].get<std::string>(),
              ::testing::HasSubstr("max_tokens"));

  auto bad_header = Post("/v1/chat/completions", ChatBody("hello"),
                         {{"x-promptcache-threshold", "2"}});
  EXPECT_EQ(bad_header->status, 400);
  EXPECT_THAT(bad_header->body,
              ::testing::HasSubstr("x-promptcache-threshold"));

  auto unknown_model =
      Post("/v1/chat/completions", ChatBody("hello", false, "no-such-model"));
  EXPECT_EQ(unknown_model->status, 404);
  EXPECT_EQ(Json::parse(unknown_model->body)["error"]["code"],
            "model_not_found");
  EXPECT_EQ(stub_.calls(), 1);  // Only the unknown model went upstream.
  EXPECT_EQ(unknown_model->get_header_value("x-promptcache-status"), "ERROR");

  // Issue 14: an HTML error page was relayed as it came, with no
  // x-promptcache-status; and every 404 said model_not_found.
  auto html = Post("/v1/chat/completions",
                   ChatBody("hello", false, "html-error-model"));
  ASSERT_TRUE(html);
  EXPECT_EQ(html->status, 502);
  EXPECT_EQ(html->get_header_value("x-promptcache-status"), "ERROR");
  EXPECT_THAT(Json::parse(html->body)["error"]["message"].get<std::string>(),
              ::testing::HasSubstr("not JSON (text/html"));
  httplib::Client client("127.0.0.1", server_->port());
  auto no_endpoint = client.Get("/not-an-endpoint");
  ASSERT_TRUE(no_endpoint);
  EXPECT_EQ(no_endpoint->status, 404);
  EXPECT_EQ(Json::parse(no_endpoint->body)["error"]["code"], "not_found");
  const int calls_before_huge = stub_.calls();

  const std::string huge(9 << 20, 'x');
  auto too_big = Post("/v1/chat/completions", ChatBody(huge));
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  EXPECT_TRUE(Json::parse(too_big->body)["error"]["message"].is_string());
  EXPECT_EQ(stub_.calls(), calls_before_huge);
}

TEST_F(ProxyTest, TheUpstreamTimeoutBoundsRetriesToo) {
  // Issue 14: a hanging upstream took every retry's full timeout (17.8 s for
  // --upstream-timeout 3). No retry starts past the timeout now.
  StartProxy([](ProxyOptions& o) {
    o.openai.timeout = absl::Milliseconds(300);
    o.openai.max_retries = 2;
  });
  for (bool stream : {false, true}) {
    const int before = stub_.calls();
    auto r = Post("/v1/chat/completions",
                  ChatBody("Are you there?", stream, "hanging-model"));
    ASSERT_TRUE(r) << httplib::to_string(r.error()) << " stream " << stream;
    EXPECT_EQ(r->status, 504) << r->body;
    EXPECT_EQ(r->get_header_value("x-promptcache-status"), "ERROR");
    EXPECT_EQ(stub_.calls() - before, 1) << (stream ? "stream" : "buffered");
  }
}

TEST_F(ProxyTest, ASecondProxyCannotShareThePort) {
  // Issue 14, defect 3: with SO_REUSEPORT both bound and split the traffic.
  Options o;
  auto other_cache = *Cache::Open(dir_.Sub("db2"), o);
  ProxyOptions options;
  options.port = server_->port();
  options.openai.base_url = absl::StrCat("http://127.0.0.1:", stub_.port());
  options.anthropic.base_url = options.openai.base_url;
  absl::StatusOr<std::unique_ptr<ProxyServer>> second =
      ProxyServer::Create(*other_cache, options);
  ASSERT_TRUE(second.ok()) << second.status();
  absl::Status started = (*second)->Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable) << started;
  // The first one still answers.
  auto ok = Post("/v1/chat/completions", ChatBody("still here?"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ProxyTest, ByDefaultClientsKeysGoUpstreamWhateverTheEnvironment) {
  // Issue 14, defect 2: the operator's key in the environment must not be
  // used unless the proxy is told to.
  setenv("OPENAI_API_KEY", "sk-operator-key-in-env", 1);
  setenv("ANTHROPIC_API_KEY", "sk-ant-operator-key-in-env", 1);
  StartProxy([](ProxyOptions& o) {
    const ProxyOptions defaults;
    o.openai.api_key_env = defaults.openai.api_key_env;
    o.anthropic.api_key_env = defaults.anthropic.api_key_env;
  });
  unsetenv("OPENAI_API_KEY");
  unsetenv("ANTHROPIC_API_KEY");
  EXPECT_EQ(ProxyOptions{}.openai.api_key_env, "");
  EXPECT_EQ(ProxyOptions{}.anthropic.api_key_env, "");
  auto ok = Post("/v1/chat/completions", ChatBody("Whose key is this now?"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(stub_.last_auth(), "Bearer sk-tenant-a-secret");
}

TEST_F(ProxyTest, TheProxysOwnKeyNeedsClientKeys) {
  // Issue 14, defect 2: with its own key a proxy must not serve anyone.
  setenv("PROMPTCACHE_TEST_PROXY_KEY", "sk-proxy-own-key", 1);
  ProxyOptions options;
  options.port = 0;
  options.openai.api_key_env = "PROMPTCACHE_TEST_PROXY_KEY";
  absl::StatusOr<std::unique_ptr<ProxyServer>> refused =
      ProxyServer::Create(*cache_, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              ::testing::HasSubstr("clients must authenticate"));
  // Said explicitly, an open proxy is allowed (and reported as such).
  options.allow_unauthenticated_clients = true;
  absl::StatusOr<std::unique_ptr<ProxyServer>> open =
      ProxyServer::Create(*cache_, options);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_THAT((*open)->AuthenticationSummary(),
              ::testing::HasSubstr("ANY client"));
  options.allow_unauthenticated_clients = false;
  options.protect_stats = true;
  options.client_keys = {{"sk-client", ""}};
  EXPECT_FALSE(ProxyServer::Create(*cache_, options).ok());  // empty tenant
  options.client_keys = {{"sk-client", std::string("a\nb")}};
  EXPECT_FALSE(ProxyServer::Create(*cache_, options).ok());  // control char
  // "acme" with the header "prod" would be tenant "acme/prod"'s namespace.
  options.client_keys = {{"sk-client", "acme/prod"}};
  EXPECT_FALSE(ProxyServer::Create(*cache_, options).ok());
  // The header namespace mode would let any key name any tenant.
  options.client_keys = {{"sk-client", "acme"}};
  options.namespace_mode = NamespaceMode::kHeader;
  EXPECT_FALSE(ProxyServer::Create(*cache_, options).ok());
  options.namespace_mode = NamespaceMode::kApiKey;
  options.client_keys.clear();
  options.openai.api_key_env = "";
  EXPECT_FALSE(ProxyServer::Create(*cache_, options).ok());  // protect_stats
  unsetenv("PROMPTCACHE_TEST_PROXY_KEY");
}

TEST_F(ProxyTest, AKeyGivenDirectlyAndExtraHeadersGoUpstream) {
  StartProxy([](ProxyOptions& o) {
    o.openai.api_key = "sk-proxy-direct-key";  // UpstreamOptions::api_key
    o.openai.extra_headers = {{"OpenAI-Organization", "org-acme"}};
    o.client_keys = {{"sk-team-a-1", "team-a"}};
  });
  EXPECT_THAT(server_->AuthenticationSummary(),
              ::testing::HasSubstr("ProxyUpstream::api_key"));
  EXPECT_THAT(server_->AuthenticationSummary(),
              ::testing::Not(::testing::HasSubstr("sk-proxy-direct-key")));
  // The operator's header replaces the client's own (sent once).
  auto ok = Post("/v1/chat/completions", ChatBody("Which organization?"),
                 {{"OpenAI-Organization", "org-client"}}, "sk-team-a-1");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(stub_.last_auth(), "Bearer sk-proxy-direct-key");
  EXPECT_EQ(stub_.last_org(), "org-acme x1");
}

TEST_F(ProxyTest, TheProxysOwnKeyServesConfiguredClientsAsTheirTenants) {
  setenv("PROMPTCACHE_TEST_PROXY_KEY", "sk-proxy-own-key", 1);
  StartProxy([](ProxyOptions& o) {
    o.openai.api_key_env = "PROMPTCACHE_TEST_PROXY_KEY";
    o.client_keys = {{"sk-team-a-1", "team-a"},
                     {"sk-team-a-2", "team-a"},
                     {"sk-team-b-1", "team-b"}};
    o.protect_stats = true;
  });
  unsetenv("PROMPTCACHE_TEST_PROXY_KEY");
  EXPECT_THAT(server_->AuthenticationSummary(),
              ::testing::HasSubstr("3 configured key(s) for 2 tenant(s)"));
  // No key, an unknown key: 401 in the provider's format, nothing upstream.
  httplib::Client client("127.0.0.1", server_->port());
  auto none = client.Post("/v1/chat/completions", ChatBody("Whose key?"),
                          "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_TRUE(Json::parse(none->body)["error"]["message"].is_string());
  auto unknown = Post("/v1/chat/completions", ChatBody("Whose key?"), {},
                      "sk-tenant-a-secret");
  EXPECT_EQ(unknown->status, 401);
  auto models = client.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);
  EXPECT_EQ(stub_.calls(), 0);

  auto ok = Post("/v1/chat/completions", ChatBody("Whose key is this?"), {},
                 "sk-team-a-1");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(stub_.last_auth(), "Bearer sk-proxy-own-key");
  // Two keys of one tenant share its answers; another tenant does not.
  auto same_tenant = Post("/v1/chat/completions",
                          ChatBody("Whose key is this?"), {}, "sk-team-a-2");
  EXPECT_EQ(same_tenant->get_header_value("x-promptcache-status"), "HIT");
  auto other = Post("/v1/chat/completions", ChatBody("Whose key is this?"), {},
                    "sk-team-b-1");
  EXPECT_EQ(other->get_header_value("x-promptcache-status"), "MISS");
  // A call it cannot cache is still a model call, forwarded.
  Json n2 = Json::parse(ChatBody("Two answers please"));
  n2["n"] = 2;
  auto bypass = Post("/v1/chat/completions", n2.dump(), {}, "sk-team-b-1");
  EXPECT_EQ(bypass->status, 200);
  EXPECT_EQ(bypass->get_header_value("x-promptcache-status"), "BYPASS");
  // An upstream echoing the key in an error does not hand it to clients.
  auto echoed =
      Post("/v1/chat/completions", ChatBody("hi", false, "echo-key-model"), {},
           "sk-team-a-1");
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->status, 401);
  EXPECT_THAT(echoed->body,
              ::testing::Not(::testing::HasSubstr("sk-proxy-own")));
  EXPECT_THAT(echoed->body, ::testing::HasSubstr("[redacted]"));
  // Other endpoints: reads only, never actions on the operator's account.
  const httplib::Headers auth = {{"Authorization", "Bearer sk-team-b-1"}};
  auto remove = client.Delete("/v1/files/file-abc", auth);
  ASSERT_TRUE(remove);
  EXPECT_EQ(remove->status, 403);
  models = client.Get("/v1/models", auth);
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  // Totals over all tenants only with a client key.
  EXPECT_EQ(client.Get("/metrics")->status, 401);
  EXPECT_EQ(client.Get("/promptcache/stats")->status, 401);
  EXPECT_EQ(client.Get("/metrics", auth)->status, 200);
  EXPECT_EQ(client.Get("/promptcache/stats", auth)->status, 200);
}

TEST_F(ProxyTest, TheNamespaceKeyIsTheKeyForwarded) {
  // Issue 14: x-api-key picked the namespace while both auth headers went
  // upstream, where OpenAI reads only Authorization.
  auto first = Post("/v1/chat/completions", ChatBody("One key per call"),
                    {{"x-api-key", "sk-someone-else"}}, "sk-tenant-a-secret");
  ASSERT_TRUE(first);
  EXPECT_EQ(stub_.last_auth(), "Bearer sk-tenant-a-secret");
  // The same Authorization key without the extra header is the same tenant.
  auto again = Post("/v1/chat/completions", ChatBody("One key per call"));
  EXPECT_EQ(again->get_header_value("x-promptcache-status"), "HIT");
}

TEST_F(ProxyTest, MultipartUploadsAreRefusedAndTheConnectionStaysInStep) {
  // httplib 0.11 threw on a multipart body read as raw bytes (a 500), and
  // left the rest of it to be parsed as the next request.
  httplib::Client client("127.0.0.1", server_->port());
  httplib::MultipartFormDataItems items = {
      {"purpose", "fine-tune", "", ""},
      {"file", std::string(100000, 'x'), "data.jsonl", "application/jsonl"}};
  auto upload =
      client.Post("/v1/files", {{"Authorization", "Bearer sk-a"}}, items);
  ASSERT_TRUE(upload);
  EXPECT_EQ(upload->status, 415);
  EXPECT_EQ(upload->get_header_value("x-promptcache-status"), "ERROR");
  // The same connection serves the next request.
  auto next =
      client.Post("/v1/chat/completions", {{"Authorization", "Bearer sk-a"}},
                  ChatBody("after an upload"), "application/json");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

TEST(LoadClientKeysTest, ReadsAnObjectAndNamesWhatIsWrong) {
  TempDir dir;
  const std::string good = dir.Sub("keys.json");
  std::ofstream(good) << R"({"sk-1": "team-a", "sk-2": "team-b"})";
  absl::StatusOr<std::map<std::string, std::string>> keys =
      LoadClientKeys(good);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_EQ(keys->at("sk-2"), "team-b");
  for (const std::string& text :
       {std::string(R"(["sk-1"])"), std::string("{}"), std::string("{"),
        std::string(R"({"sk-1": 3})")}) {
    const std::string path = dir.Sub("bad.json");
    std::ofstream(path, std::ios::trunc) << text;
    absl::StatusOr<std::map<std::string, std::string>> bad =
        LoadClientKeys(path);
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("bad.json"));
  }
  EXPECT_FALSE(LoadClientKeys(dir.Sub("missing.json")).ok());
  EXPECT_FALSE(LoadClientKeys(dir.path()).ok());
}

TEST_F(ProxyTest, ClientKeysEchoedByTheUpstreamAreNotLogged) {
  auto echoed =
      Post("/v1/chat/completions", ChatBody("hi", false, "echo-key-model"), {},
           "sk-client-echoed-secret");
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->status, 401);
  server_->Shutdown();
  std::ifstream log(dir_.Sub("access.log"));
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_THAT(text.str(), ::testing::HasSubstr("\"status\":401"));
  EXPECT_THAT(text.str(),
              ::testing::Not(::testing::HasSubstr("sk-client-echoed-secret")));
}

TEST_F(ProxyTest, BetaHeadersArePartOfTheKey) {
  const std::string body =
      R"({"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":"Count to three"}]})";
  httplib::Client client("127.0.0.1", server_->port());
  auto post = [&](httplib::Headers extra) {
    extra.emplace("x-api-key", "sk-ant-secret");
    extra.emplace("anthropic-version", "2023-06-01");
    return client.Post("/v1/messages", extra, body, "application/json");
  };
  EXPECT_EQ(post({})->get_header_value("x-promptcache-status"), "MISS");
  EXPECT_EQ(post({{"anthropic-beta", "output-128k-2025-02-19"}})
                ->get_header_value("x-promptcache-status"),
            "MISS");
  EXPECT_EQ(post({{"anthropic-beta", " output-128k-2025-02-19"}})
                ->get_header_value("x-promptcache-status"),
            "HIT");
  EXPECT_EQ(post({})->get_header_value("x-promptcache-status"), "HIT");
  EXPECT_EQ(stub_.calls(), 2);
}

TEST_F(ProxyTest, AnswersThatCannotBeReadAreRelayedNotCached) {
  for (int i = 1; i <= 2; ++i) {
    auto r = Post("/v1/chat/completions",
                  ChatBody("parts please", false, "array-content-model"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_THAT(r->body, ::testing::HasSubstr("\"parts\""));
    EXPECT_EQ(stub_.calls(), i);
  }
}

TEST_F(ProxyTest, UnpricedModelsCanBeRejected) {
  StartProxy([](ProxyOptions& o) { o.reject_unpriced_models = true; });
  auto r =
      Post("/v1/chat/completions", ChatBody("hello", false, "gpt-17-ultra"));
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(Json::parse(r->body)["error"]["code"], "model_not_found");
  EXPECT_EQ(stub_.calls(), 0);
}

TEST_F(ProxyTest, StreamIsRelayedStoredAndReplayed) {
  auto first =
      Post("/v1/chat/completions", ChatBody("Stream me a haiku", true));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->get_header_value("x-promptcache-status"), "MISS");
  EXPECT_TRUE(absl::StrContains(first->body, "data: [DONE]"));
  // The usage chunk the proxy asked for is not relayed: the client did not
  // ask for it.
  EXPECT_FALSE(absl::StrContains(first->body, "\"choices\":[]"));
  EXPECT_TRUE(absl::StrContains(stub_.last_body(), "include_usage"));
  EXPECT_EQ(stub_.calls(), 1);

  auto replay =
      Post("/v1/chat/completions", ChatBody("Stream me a haiku", true));
  EXPECT_EQ(replay->get_header_value("x-promptcache-status"), "HIT");
  EXPECT_EQ(replay->get_header_value("Content-Type"), "text/event-stream");
  EXPECT_EQ(stub_.calls(), 1);
  // Assemble the replayed text.
  std::string text;
  std::istringstream lines(replay->body);
  for (std::string line; std::getline(lines, line);) {
    if (!absl::StartsWith(line, "data: {")) continue;
    const Json chunk = Json::parse(line.substr(6));
    const Json& delta = chunk["choices"][0]["delta"];
    if (delta.contains("content")) text += delta["content"].get<std::string>();
  }
  EXPECT_EQ(text, "Answer #1 to: Stream me a haiku");
  // Non-streamed after streamed: same entry.
  auto plain = Post("/v1/chat/completions", ChatBody("Stream me a haiku"));
  EXPECT_EQ(plain->get_header_value("x-promptcache-status"), "HIT");
  EXPECT_EQ(stub_.calls(), 1);
}

TEST_F(ProxyTest, AbortedUpstreamStreamIsNeverStored) {
  // The client sees a broken transfer, never a stream that looks complete.
  auto first =
      Post("/v1/chat/completions", ChatBody("Please ABORT midway", true));
  EXPECT_FALSE(first) << first->body;
  auto again =
      Post("/v1/chat/completions", ChatBody("Please ABORT midway", true));
  EXPECT_FALSE(again);
  EXPECT_EQ(stub_.calls(), 2);
  // Nothing was stored: the same question unstreamed goes upstream.
  auto plain = Post("/v1/chat/completions", ChatBody("Please ABORT midway"));
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->get_header_value("x-promptcache-status"), "MISS");
  EXPECT_EQ(stub_.calls(), 3);
}

// Sends a streamed request on a raw socket, reads a little, hangs up.
void HangUpMidStream(int port, const std::string& body) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = absl::StrCat(
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
      "sk-a\r\nContent-Type: application/json\r\nContent-Length: ",
      body.size(), "\r\n\r\n", body);
  ASSERT_EQ(write(fd, request.data(), request.size()),
            static_cast<ssize_t>(request.size()));
  char buf[512];
  ASSERT_GT(read(fd, buf, sizeof(buf)), 0);  // Headers and a first event.
  close(fd);
}

// This process's peak resident memory in KiB since the last call (the peak
// is reset to the current figure after reading it).
int64_t PeakRssKiBAndReset() {
  int64_t kib = -1;
  {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
      if (absl::StartsWith(line, "VmHWM:")) {
        std::istringstream(line.substr(6)) >> kib;
      }
    }
  }
  std::ofstream("/proc/self/clear_refs") << "5";
  return kib;
}

// Sends `chunks` chunks of `chunk_bytes` as one chunked upload and returns
// the proxy's reply.
std::string ChunkedUploadReply(
    int port, int chunks, size_t chunk_bytes,
    const std::string& path = "/v1/chat/completions") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "connect failed";
  }
  auto send_all = [fd](const std::string& data) {
    for (size_t sent = 0; sent < data.size();) {
      const ssize_t n =
          send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  };
  const std::string chunk = absl::StrCat(absl::Hex(chunk_bytes), "\r\n",
                                         std::string(chunk_bytes, ' '), "\r\n");
  bool sent =
      send_all("POST " + path +
               " HTTP/1.1\r\nHost: x\r\nAuthorization: "
               "Bearer sk-a\r\nContent-Type: application/json\r\nConnection: "
               "close\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; sent && i < chunks; ++i) sent = send_all(chunk);
  if (sent) send_all("0\r\n\r\n");
  timeval timeout{60, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) reply.append(buf, n);
  close(fd);
  return reply;
}

TEST_F(ProxyTest, AChunkedUploadKeepsNoMoreThanTheBodyLimit) {
  // Issue 14, defect 4: the body limit held only with a Content-Length, and
  // a chunked upload was read whole into memory.
  StartProxy([](ProxyOptions& o) { o.max_body_bytes = 64 << 10; });
  PeakRssKiBAndReset();
  const int64_t before_kib = PeakRssKiBAndReset();
  ASSERT_GT(before_kib, 0);
  // 256 MB offered to a 64 KB limit.
  const std::string reply = ChunkedUploadReply(server_->port(), 256, 1 << 20);
  const int64_t peak_kib = PeakRssKiBAndReset();
  EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 413")) << reply.substr(0, 200);
  EXPECT_THAT(reply, ::testing::HasSubstr("larger than 65536 bytes"));
  // Held whole, the body alone would add 256 MB (more with string growth).
  EXPECT_LT(peak_kib - before_kib, 64 << 10)
      << "peak resident memory grew by " << (peak_kib - before_kib) << " KiB";
  EXPECT_EQ(stub_.calls(), 0);
  // Any path: httplib alone read a chunked body to an unknown path whole.
  PeakRssKiBAndReset();
  const std::string elsewhere =
      ChunkedUploadReply(server_->port(), 256, 1 << 20, "/not/an/endpoint");
  EXPECT_TRUE(absl::StartsWith(elsewhere, "HTTP/1.1 413"))
      << elsewhere.substr(0, 200);
  EXPECT_LT(PeakRssKiBAndReset() - before_kib, 64 << 10);

  // A chunked body under the limit is served as any other.
  httplib::Client client("127.0.0.1", server_->port());
  const std::string body = ChatBody("chunked but small");
  auto small = client.Post(
      "/v1/chat/completions", {{"Authorization", "Bearer sk-a"}},
      [&](size_t offset, httplib::DataSink& sink) {
        const size_t n = std::min<size_t>(7, body.size() - offset);
        sink.write(body.data() + offset, n);
        if (offset + n >= body.size()) sink.done();
        return true;
      },
      "application/json");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->status, 200) << small->body;
  EXPECT_EQ(stub_.calls(), 1);
}

TEST_F(ProxyTest, ClientHangingUpMidStreamStoresNothing) {
  const std::string body =
      ChatBody("A SLOW story for a client who leaves", true);
  HangUpMidStream(server_->port(), body);
  // The proxy aborts upstream; give it time to notice.
  for (int i = 0; i < 200 && !stub_.stream_broken(); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(stub_.stream_broken());
  auto again = Post("/v1/chat/completions", body);
  EXPECT_EQ(again->get_header_value("x-promptcache-status"), "MISS");
  EXPECT_EQ(stub_.calls(), 2);
}

TEST_F(ProxyTest, ConcurrentIdenticalCallsAreCoalesced) {
  std::vector<std::thread> threads;
  std::vector<std::string> statuses(6);
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      auto r = Post("/v1/chat/completions", ChatBody("A SLOW common question"));
      if (r) statuses[i] = r->get_header_value("x-promptcache-status");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(stub_.calls(), 1);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), "MISS"), 1);
  for (const std::string& s : statuses) {
    EXPECT_TRUE(s == "MISS" || s == "COALESCED" || s == "HIT") << s;
  }
}

TEST_F(ProxyTest, AnthropicMessagesAreCachedWithTheirHeaders) {
  const std::string body =
      R"({"model":"claude-haiku-4-5","max_tokens":100,"system":"Be brief.","messages":[{"role":"user","content":"Name a prime"}]})";
  httplib::Headers headers = {{"x-api-key", "sk-ant-secret"},
                              {"anthropic-version", "2023-06-01"}};
  httplib::Client client("127.0.0.1", server_->port());
  auto first = client.Post("/v1/messages", headers, body, "application/json");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200) << first->body;
  EXPECT_EQ(stub_.last_auth(), "sk-ant-secret");
  auto second = client.Post("/v1/messages", headers, body, "application/json");
  EXPECT_EQ(second->get_header_value("x-promptcache-status"), "HIT");
  const Json answer = Json::parse(second->body);
  EXPECT_EQ(answer["type"], "message");
  EXPECT_EQ(answer["content"][0]["text"], "Answer #1 to: Name a prime");
  EXPECT_EQ(answer["stop_reason"], "end_turn");
  EXPECT_EQ(stub_.calls(), 1);
}

TEST_F(ProxyTest, UnknownEndpointsAndUncacheableCallsPassThrough) {
  httplib::Client client("127.0.0.1", server_->port());
  auto models = client.Get("/v1/models", {{"Authorization", "Bearer sk-x"}});
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  EXPECT_EQ(Json::parse(models->body)["data"][0]["id"], "gpt-4o-mini");
  EXPECT_EQ(models->get_header_value("x-promptcache-status"), "PASSTHROUGH");
  EXPECT_EQ(stub_.last_auth(), "Bearer sk-x");

  Json n2 = Json::parse(ChatBody("Two answers please"));
  n2["n"] = 2;
  auto first = Post("/v1/chat/completions", n2.dump());
  EXPECT_EQ(first->get_header_value("x-promptcache-status"), "BYPASS");
  auto second = Post("/v1/chat/completions", n2.dump());
  EXPECT_EQ(second->get_header_value("x-promptcache-status"), "BYPASS");
  EXPECT_EQ(stub_.calls(), 3);
}

TEST_F(ProxyTest, MetricsStatsAndAccessLogHoldNoSecrets) {
  Post("/v1/chat/completions", ChatBody("Count me"));
  Post("/v1/chat/completions", ChatBody("Count me"));
  httplib::Client client("127.0.0.1", server_->port());
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(
      metrics->body,
      ::testing::HasSubstr("promptcache_requests_total{api=\"openai.chat\","
                           "status=\"HIT\"} 1"));
  EXPECT_THAT(metrics->body,
              ::testing::HasSubstr("promptcache_dollars_saved_total{backend="
                                   "\"openai\",model=\"gpt-4o-mini\"}"));
  EXPECT_THAT(
      metrics->body,
      ::testing::HasSubstr("promptcache_request_duration_seconds_bucket"));
  auto stats = client.Get("/promptcache/stats");
  ASSERT_TRUE(stats);
  const Json json = Json::parse(stats->body);
  EXPECT_EQ(json["ledger_total"]["exact_hits"], 1);
  // The same row format as `promptcache report --json`.
  EXPECT_GT(json["ledger_total"]["saved_usd"].get<double>(), 0);
  EXPECT_EQ(json["ledger_total"]["pricing"], "priced");
  EXPECT_EQ(json["cache"]["entries"], 1);
  EXPECT_EQ(json["cache"]["lookup_errors"], 0);
  EXPECT_EQ(json["cache"]["store_errors"], 0);

  server_->Shutdown();
  server_.reset();
  cache_.reset();
  std::ifstream log(dir_.Sub("access.log"));
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_THAT(text.str(), ::testing::HasSubstr("\"cache\":\"HIT\""));
  EXPECT_THAT(text.str(), ::testing::Not(::testing::HasSubstr("sk-tenant-a")));
  // Nor anywhere in the database files.
  for (const auto& file :
       std::filesystem::recursive_directory_iterator(dir_.Sub("db"))) {
    if (!file.is_regular_file()) continue;
    std::ifstream in(file.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    EXPECT_EQ(bytes.str().find("sk-tenant-a-secret"), std::string::npos)
        << file.path();
  }
}

TEST_F(ProxyTest, ConnectionsBeyondTheLimitWaitForAWorker) {
  StartProxy([](ProxyOptions& o) {
    o.max_connections = 1;
    o.keep_alive_timeout = absl::Seconds(30);
  });
  // An idle connection takes the only worker.
  const int idle = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  absl::SleepFor(absl::Milliseconds(50));  // Let the worker pick it up.
  std::atomic<bool> served{false};
  int status = 0;
  std::thread caller([&] {
    auto r = Post("/v1/chat/completions", ChatBody("Waiting in line"));
    if (r) status = r->status;
    served = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(served.load()) << "a second connection got a worker";
  close(idle);
  caller.join();
  EXPECT_TRUE(served.load());
  EXPECT_EQ(status, 200);
}

TEST_F(ProxyTest, TheKernelQueuesManyConnectionsBeforeTheyAreAccepted) {
  // Issue 14, defect 3: cpp-httplib listens with a backlog of 5.
  StartProxy([](ProxyOptions& o) {
    o.max_connections = 1;
    o.max_pending_connections = 1;
    o.keep_alive_timeout = absl::Seconds(30);
  });
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  // Idle connections take the worker and the queue; the accept loop then
  // waits for room, and the kernel's backlog holds what comes next.
  std::vector<int> sockets;
  for (int i = 0; i < 3; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    sockets.push_back(fd);
    absl::SleepFor(absl::Milliseconds(50));
  }
  constexpr int kWaiting = 40;
  int connected = 0;
  for (int i = 0; i < kWaiting; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockets.push_back(fd);
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    pollfd p{fd, POLLOUT, 0};
    // A handshake on loopback takes microseconds; a full backlog drops the
    // SYN and the connect waits a second or more to retry.
    if (poll(&p, 1, 500) == 1) {
      int error = 0;
      socklen_t len = sizeof(error);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
      if (error == 0) ++connected;
    }
  }
  EXPECT_EQ(connected, kWaiting);
  for (int fd : sockets) close(fd);
}

TEST_F(ProxyTest, ShutdownLetsAStreamInFlightFinish) {
  std::string body;
  std::thread caller([&] {
    auto r = Post("/v1/chat/completions",
                  ChatBody("A SLOW stream during shutdown", true));
    if (r) body = r->body;
  });
  // Wait until the stream is under way, then shut down.
  for (int i = 0; i < 500 && stub_.calls() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  server_->Shutdown();
  caller.join();
  EXPECT_TRUE(absl::StrContains(body, "data: [DONE]")) << body;
  // The answer was stored before the database closed.
  StartProxy({});
  auto again = Post("/v1/chat/completions",
                    ChatBody("A SLOW stream during shutdown", true));
  EXPECT_EQ(again->get_header_value("x-promptcache-status"), "HIT");
}

}  // namespace
}  // namespace promptcache
