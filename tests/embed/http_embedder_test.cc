// HttpEmbedder against a stub OpenAI-compatible server on 127.0.0.1.
#include "promptcache/http_embedder.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "local_http_server.h"
#include "nlohmann/json.hpp"

namespace promptcache {
namespace {

using testing::LocalHttpServer;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr int kDim = 8;

// gMock prints absl::string_view (not std::) character by character.
std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// Deterministic, unnormalized vector for a text, so tests can check both
// the values and that the client normalized them.
std::vector<float> RawVector(const std::string& text, int dim) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a.
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  std::vector<float> v(static_cast<size_t>(dim));
  for (int j = 0; j < dim; ++j) {
    v[static_cast<size_t>(j)] =
        static_cast<float>((h >> (j % 48)) % 1000) / 100.0f - 4.0f + 0.25f * j;
  }
  return v;
}

std::vector<float> Normalized(std::vector<float> v) {
  double n2 = 0;
  for (float x : v) n2 += static_cast<double>(x) * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n2));
  return v;
}

enum class Fault {
  kNone,
  k503,
  k429,
  k400,
  k401Echo,  // Echoes the Authorization header in the error message.
  kWrongDim,
  kNaN,
  kInf,       // 1e300: a double, but no float.
  kOverflow,  // 1e999: not even a double.
  kGarbage,
  kZero,
  kMissingItem,
  kDuplicateIndex,
  kSleep,
};

class StubServer {
 public:
  StubServer() {
    http_.server().Post("/v1/embeddings",
                        [this](const httplib::Request& req,
                               httplib::Response& res) { Handle(req, res); });
    http_.Start();
  }
  // Before the members the handlers use are gone.
  ~StubServer() { http_.Stop(); }

  std::string base_url() const { return http_.base_url(); }

  // The first `k` calls answer with `fault`; later calls succeed.
  void FailFirst(int k, Fault fault) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_count_ = k;
    fault_ = fault;
  }
  void set_reverse_order(bool on) { reverse_order_ = on; }
  void set_omit_usage(bool on) { omit_usage_ = on; }
  void set_retry_after(const std::string& value) {
    std::lock_guard<std::mutex> lock(mu_);
    retry_after_ = value;
  }
  void set_sleep(std::chrono::milliseconds sleep) { sleep_ms_ = sleep.count(); }

  int calls() const { return calls_.load(); }
  std::vector<int> batch_sizes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batch_sizes_;
  }
  std::string last_authorization() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_authorization_;
  }
  Json last_request() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    const int call = ++calls_;
    Json body = Json::parse(req.body, nullptr, false);
    std::vector<std::string> inputs;
    if (body.is_object() && body.contains("input")) {
      for (const Json& t : body["input"])
        inputs.push_back(t.get<std::string>());
    }
    Fault fault = Fault::kNone;
    std::string retry_after;
    std::string auth = req.get_header_value("Authorization");
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch_sizes_.push_back(static_cast<int>(inputs.size()));
      last_authorization_ = auth;
      last_request_ = body;
      if (call <= fail_count_) fault = fault_;
      retry_after = retry_after_;
    }
    const int dim =
        body.contains("dimensions") ? body["dimensions"].get<int>() : kDim;
    switch (fault) {
      case Fault::k503:
        res.status = 503;
        res.set_content("upstream overloaded", "text/plain");
        return;
      case Fault::k429:
        res.status = 429;
        res.set_header("Retry-After", retry_after);
        res.set_content(R"({"error":{"message":"Rate limit reached"}})",
                        "application/json");
        return;
      case Fault::k400:
        res.status = 400;
        res.set_content(
            R"({"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error"}})",
            "application/json");
        return;
      case Fault::k401Echo:
        res.status = 401;
        res.set_content(
            Json{
                {"error", {{"message", "Incorrect API key provided: " + auth}}}}
                .dump(),
            "application/json");
        return;
      case Fault::kNaN:
        res.set_content(
            R"({"data":[{"index":0,"embedding":[NaN,0.5,0.5,0.5,0.5,0.5,0.5,0.5]}]})",
            "application/json");
        return;
      case Fault::kInf:
        res.set_content(
            R"({"data":[{"index":0,"embedding":[1e300,0.5,0.5,0.5,0.5,0.5,0.5,0.5]}]})",
            "application/json");
        return;
      case Fault::kOverflow:
        res.set_content(
            R"({"data":[{"index":0,"embedding":[1e999,0.5,0.5,0.5,0.5,0.5,0.5,0.5]}]})",
            "application/json");
        return;
      case Fault::kGarbage:
        res.set_content("<html>502 Bad Gateway</html>", "text/html");
        return;
      case Fault::kSleep:
        std::this_thread::sleep_for(
            std::chrono::milliseconds(sleep_ms_.load()));
        break;
      default:
        break;
    }

    Json data = Json::array();
    int64_t tokens = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::vector<float> v = RawVector(inputs[i], dim);
      if (fault == Fault::kWrongDim) v.resize(v.size() / 2);
      if (fault == Fault::kZero) v.assign(v.size(), 0.0f);
      const size_t index = fault == Fault::kDuplicateIndex ? 0 : i;
      data.push_back(
          {{"object", "embedding"}, {"index", index}, {"embedding", v}});
      tokens += static_cast<int64_t>(inputs[i].size());
    }
    if (fault == Fault::kMissingItem && !data.empty())
      data.erase(data.size() - 1);
    if (reverse_order_) {
      Json reversed = Json::array();
      for (size_t i = data.size(); i > 0; --i) reversed.push_back(data[i - 1]);
      data = reversed;
    }
    Json reply = {{"object", "list"}, {"data", data}, {"model", body["model"]}};
    if (!omit_usage_) {
      reply["usage"] = {{"prompt_tokens", tokens}, {"total_tokens", tokens}};
    }
    res.set_content(reply.dump(), "application/json");
  }

  LocalHttpServer http_;
  std::atomic<int> calls_{0};
  std::atomic<bool> reverse_order_{false};
  std::atomic<bool> omit_usage_{false};
  // Set by the test while the server thread serves (TSan).
  std::atomic<int64_t> sleep_ms_{0};
  mutable std::mutex mu_;
  int fail_count_ = 0;
  Fault fault_ = Fault::kNone;
  std::string retry_after_ = "0";
  std::vector<int> batch_sizes_;
  std::string last_authorization_;
  Json last_request_;
};

class HttpEmbedderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A proxy from the environment must not intercept 127.0.0.1.
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  }

  HttpEmbedderOptions Options() const {
    HttpEmbedderOptions o;
    o.base_url = server_.base_url();
    o.model = "test-model";
    o.api_key_env = "PROMPTCACHE_TEST_UNSET_KEY_VAR";
    o.dimension = kDim;
    o.initial_backoff = absl::Milliseconds(1);
    o.timeout = absl::Seconds(5);
    return o;
  }

  std::unique_ptr<HttpEmbedder> Make(const HttpEmbedderOptions& o) {
    auto e = HttpEmbedder::Create(o);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? std::move(*e) : nullptr;
  }

  // Creates an embedder from `o` and embeds {"hello"} into `out` (a scratch
  // vector when null). `elapsed`, when set, gets the time Embed alone took.
  absl::Status EmbedHello(const HttpEmbedderOptions& o,
                          std::vector<float>* out = nullptr,
                          absl::Duration* elapsed = nullptr) {
    auto e = Make(o);
    if (e == nullptr) return absl::InternalError("HttpEmbedder::Create failed");
    const std::vector<std::string> texts = {"hello"};
    std::vector<float> scratch;
    const absl::Time start = absl::Now();
    absl::Status s = e->Embed(texts, out != nullptr ? out : &scratch);
    if (elapsed != nullptr) *elapsed = absl::Now() - start;
    return s;
  }

  void ExpectRow(const std::vector<float>& out, size_t row,
                 const std::string& text) {
    const std::vector<float> want = Normalized(RawVector(text, kDim));
    double n2 = 0;
    for (int j = 0; j < kDim; ++j) {
      const float got = out[row * kDim + static_cast<size_t>(j)];
      EXPECT_NEAR(got, want[static_cast<size_t>(j)], 1e-6)
          << "row " << row << " col " << j;
      n2 += static_cast<double>(got) * got;
    }
    EXPECT_NEAR(n2, 1.0, 1e-5) << "row " << row;
  }

  StubServer server_;
};

TEST_F(HttpEmbedderTest, EmbedsInInputOrderAndNormalizes) {
  server_.set_reverse_order(true);  // Results must be placed by "index".
  auto e = Make(Options());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->name(), "http:test-model/8");
  EXPECT_EQ(e->dimension(), kDim);
  EXPECT_EQ(e->endpoint(), server_.base_url() + "/v1/embeddings");

  std::vector<std::string> texts = {"how do I change my email",
                                    "flights to Rome", "10 mg"};
  std::vector<float> out;
  ASSERT_TRUE(e->Embed(texts, &out).ok());
  ASSERT_EQ(out.size(), texts.size() * kDim);
  for (size_t i = 0; i < texts.size(); ++i) ExpectRow(out, i, texts[i]);

  EXPECT_EQ(server_.calls(), 1);
  const Json req = server_.last_request();
  EXPECT_EQ(req["model"], "test-model");
  EXPECT_EQ(req["input"], Json(texts));
  EXPECT_FALSE(req.contains("dimensions"));
  EXPECT_EQ(server_.last_authorization(), "");  // No key configured.
}

TEST_F(HttpEmbedderTest, SplitsIntoBatches) {
  HttpEmbedderOptions o = Options();
  o.max_batch = 4;
  auto e = Make(o);
  ASSERT_NE(e, nullptr);
  std::vector<std::string> texts;
  for (int i = 0; i < 10; ++i) texts.push_back(absl::StrCat("text ", i));
  std::vector<float> out;
  ASSERT_TRUE(e->Embed(texts, &out).ok());
  EXPECT_THAT(server_.batch_sizes(), ElementsAre(4, 4, 2));
  for (size_t i = 0; i < texts.size(); ++i) ExpectRow(out, i, texts[i]);
}

TEST_F(HttpEmbedderTest, EmptyTextIsZeroVectorAndNotSent) {
  auto e = Make(Options());
  ASSERT_NE(e, nullptr);
  std::vector<std::string> texts = {"a", "", "b"};
  std::vector<float> out;
  ASSERT_TRUE(e->Embed(texts, &out).ok());
  EXPECT_THAT(server_.batch_sizes(), ElementsAre(2));
  ExpectRow(out, 0, "a");
  ExpectRow(out, 2, "b");
  for (int j = 0; j < kDim; ++j) EXPECT_EQ(out[kDim + j], 0.0f);

  // Nothing to send: no request at all.
  std::vector<std::string> none = {""};
  ASSERT_TRUE(e->Embed(none, &out).ok());
  ASSERT_TRUE(e->Embed({}, &out).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(server_.calls(), 1);
}

TEST_F(HttpEmbedderTest, RetriesTransient503) {
  server_.FailFirst(2, Fault::k503);
  std::vector<float> out;
  absl::Status s = EmbedHello(Options(), &out);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(server_.calls(), 3);
  ExpectRow(out, 0, "hello");
}

TEST_F(HttpEmbedderTest, BacksOffExponentially) {
  server_.FailFirst(2, Fault::k503);
  HttpEmbedderOptions o = Options();
  o.initial_backoff = absl::Milliseconds(100);
  absl::Duration elapsed;
  ASSERT_TRUE(EmbedHello(o, nullptr, &elapsed).ok());
  // Jitter keeps at least half of 100 ms + 200 ms.
  EXPECT_GE(elapsed, absl::Milliseconds(150));
}

TEST_F(HttpEmbedderTest, GivesUpAfterMaxRetries) {
  server_.FailFirst(100, Fault::k503);
  HttpEmbedderOptions o = Options();
  o.max_retries = 2;
  absl::Status s = EmbedHello(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(s), HasSubstr("HTTP 503: upstream overloaded"));
  EXPECT_THAT(Msg(s), HasSubstr("gave up after 3 attempts"));
  EXPECT_EQ(server_.calls(), 3);
}

TEST_F(HttpEmbedderTest, RetryAfterZeroRetriesAtOnce) {
  server_.FailFirst(2, Fault::k429);
  server_.set_retry_after("0");
  HttpEmbedderOptions o = Options();
  // Without Retry-After these retries would wait seconds.
  o.initial_backoff = absl::Seconds(5);
  o.max_backoff = absl::Seconds(30);
  absl::Duration elapsed;
  absl::Status s = EmbedHello(o, nullptr, &elapsed);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_LT(elapsed, absl::Seconds(2));
  EXPECT_EQ(server_.calls(), 3);
}

TEST_F(HttpEmbedderTest, RetryAfterIsHonored) {
  server_.FailFirst(1, Fault::k429);
  server_.set_retry_after("1");
  absl::Duration elapsed;  // Backoff alone would be 1 ms.
  ASSERT_TRUE(EmbedHello(Options(), nullptr, &elapsed).ok());
  EXPECT_GE(elapsed, absl::Milliseconds(950));
}

TEST_F(HttpEmbedderTest, RetryAfterIsCapped) {
  server_.FailFirst(1, Fault::k429);
  server_.set_retry_after("3600");
  HttpEmbedderOptions o = Options();
  o.max_backoff = absl::Milliseconds(50);
  absl::Duration elapsed;
  ASSERT_TRUE(EmbedHello(o, nullptr, &elapsed).ok());
  EXPECT_LT(elapsed, absl::Seconds(2));
}

TEST_F(HttpEmbedderTest, RateLimitExhaustedIsResourceExhausted) {
  server_.FailFirst(100, Fault::k429);
  HttpEmbedderOptions o = Options();
  o.max_retries = 1;
  absl::Status s = EmbedHello(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(Msg(s), HasSubstr("HTTP 429: Rate limit reached"));
}

TEST_F(HttpEmbedderTest, NoRetryOn400AndServerMessageSurfaced) {
  server_.FailFirst(1, Fault::k400);
  absl::Status s = EmbedHello(Options());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(s), HasSubstr("HTTP 400: This model's maximum context "
                                "length is 8192 tokens"));
  EXPECT_THAT(Msg(s), HasSubstr("/v1/embeddings"));
  EXPECT_THAT(Msg(s), HasSubstr("test-model"));
  EXPECT_EQ(server_.calls(), 1);
}

TEST_F(HttpEmbedderTest, SendsBearerKeyAndNeverShowsIt) {
  const std::string key = "sk-test-SECRET-4711";
  HttpEmbedderOptions o = Options();
  o.api_key = key;
  auto e = Make(o);
  ASSERT_NE(e, nullptr);
  std::vector<std::string> texts = {"hello"};
  std::vector<float> out;
  ASSERT_TRUE(e->Embed(texts, &out).ok());
  EXPECT_EQ(server_.last_authorization(), "Bearer " + key);

  // The server echoes the key; every error path must hide it.
  const Fault faults[] = {Fault::k401Echo, Fault::k400, Fault::k503,
                          Fault::kGarbage, Fault::kWrongDim};
  for (Fault f : faults) {
    server_.FailFirst(server_.calls() + 100, f);
    absl::Status s = e->Embed(texts, &out);
    EXPECT_FALSE(s.ok());
    EXPECT_THAT(Msg(s), Not(HasSubstr(key)));
    EXPECT_THAT(Msg(s), Not(HasSubstr("SECRET")));
    if (f == Fault::k401Echo) {
      EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
      EXPECT_THAT(Msg(s), HasSubstr("Incorrect API key provided"));
      EXPECT_THAT(Msg(s), HasSubstr("[redacted]"));
    }
  }
  EXPECT_THAT(e->name(), Not(HasSubstr("SECRET")));
}

TEST_F(HttpEmbedderTest, ReadsKeyFromEnvironment) {
  setenv("PROMPTCACHE_TEST_EMBED_KEY", "env-key-42", 1);
  HttpEmbedderOptions o = Options();
  o.api_key_env = "PROMPTCACHE_TEST_EMBED_KEY";
  auto e = Make(o);
  unsetenv("PROMPTCACHE_TEST_EMBED_KEY");  // Read at Create, not later.
  ASSERT_NE(e, nullptr);
  std::vector<std::string> texts = {"hello"};
  std::vector<float> out;
  ASSERT_TRUE(e->Embed(texts, &out).ok());
  EXPECT_EQ(server_.last_authorization(), "Bearer env-key-42");
}

TEST_F(HttpEmbedderTest, RejectsKeyWithNewline) {
  HttpEmbedderOptions o = Options();
  o.api_key = "abc\r\nX-Evil: 1";
  auto e = HttpEmbedder::Create(o);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(e.status()), Not(HasSubstr("abc")));
}

TEST_F(HttpEmbedderTest, WrongDimensionIsClearErrorWithoutRetry) {
  server_.FailFirst(1, Fault::kWrongDim);
  std::vector<float> out = {1.0f};
  absl::Status s = EmbedHello(Options(), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(s), HasSubstr("expected 8, got 4"));
  EXPECT_EQ(server_.calls(), 1);
  EXPECT_THAT(out, ElementsAre(1.0f));  // Untouched on error.
}

TEST_F(HttpEmbedderTest, NonFiniteValuesAreErrors) {
  auto e = Make(Options());
  ASSERT_NE(e, nullptr);
  std::vector<std::string> texts = {"hello"};
  std::vector<float> out;

  server_.FailFirst(1, Fault::kNaN);
  absl::Status s = e->Embed(texts, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Msg(s), HasSubstr("NaN"));

  server_.FailFirst(server_.calls() + 1, Fault::kInf);
  s = e->Embed(texts, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(Msg(s), HasSubstr("not finite"));

  server_.FailFirst(server_.calls() + 1, Fault::kOverflow);
  s = e->Embed(texts, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(Msg(s), HasSubstr("non-finite values"));
}

TEST_F(HttpEmbedderTest, MalformedResponsesAreErrors) {
  auto e = Make(Options());
  ASSERT_NE(e, nullptr);
  std::vector<std::string> two = {"a", "b"};
  std::vector<float> out;

  server_.FailFirst(1, Fault::kGarbage);
  absl::Status s = e->Embed(two, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Msg(s), HasSubstr("malformed JSON"));
  EXPECT_THAT(Msg(s), HasSubstr("502 Bad Gateway"));

  server_.FailFirst(server_.calls() + 1, Fault::kMissingItem);
  s = e->Embed(two, &out);
  EXPECT_THAT(Msg(s), HasSubstr("returned 1 embeddings for 2 inputs"));

  server_.FailFirst(server_.calls() + 1, Fault::kDuplicateIndex);
  s = e->Embed(two, &out);
  EXPECT_THAT(Msg(s), HasSubstr("index 0 appears twice"));

  server_.FailFirst(server_.calls() + 1, Fault::kZero);
  s = e->Embed(two, &out);
  EXPECT_THAT(Msg(s), HasSubstr("all zeros"));

  // None of these are retried: a broken answer would come back again.
  EXPECT_EQ(server_.calls(), 4);
}

TEST_F(HttpEmbedderTest, TimeoutIsDeadlineExceeded) {
  server_.FailFirst(1, Fault::kSleep);
  server_.set_sleep(std::chrono::milliseconds(1500));
  HttpEmbedderOptions o = Options();
  o.timeout = absl::Milliseconds(200);
  o.max_retries = 0;
  absl::Duration elapsed;
  absl::Status s = EmbedHello(o, nullptr, &elapsed);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_LT(elapsed, absl::Seconds(1));
}

TEST_F(HttpEmbedderTest, TimeoutIsRetried) {
  server_.FailFirst(1, Fault::kSleep);
  server_.set_sleep(std::chrono::milliseconds(800));
  HttpEmbedderOptions o = Options();
  o.timeout = absl::Milliseconds(200);
  absl::Status s = EmbedHello(o);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(server_.calls(), 2);
}

TEST_F(HttpEmbedderTest, ConnectionRefusedIsUnavailable) {
  HttpEmbedderOptions o = Options();
  o.base_url = "http://127.0.0.1:1";  // Nothing listens on port 1.
  o.max_retries = 1;
  absl::Status s = EmbedHello(o);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(Msg(s), HasSubstr("127.0.0.1:1/v1/embeddings"));
  EXPECT_THAT(Msg(s), HasSubstr("gave up after 2 attempts"));
}

TEST_F(HttpEmbedderTest, CountsTokensAndCost) {
  HttpEmbedderOptions o = Options();
  o.usd_per_million_tokens = 0.02;
  o.max_batch = 2;
  auto e = Make(o);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->tokens_used(), 0);
  // The stub reports one token per byte.
  std::vector<std::string> texts = {"abcd", "efghij", "klmnopqr"};
  std::vector<float> out;
  int64_t tokens = -1;
  ASSERT_TRUE(e->EmbedWithUsage(texts, &out, &tokens).ok());
  EXPECT_EQ(tokens, 18);
  EXPECT_EQ(e->tokens_used(), 18);

  // Without usage in the reply: one token per 4 bytes, rounded up.
  server_.set_omit_usage(true);
  ASSERT_TRUE(e->EmbedWithUsage(texts, &out, &tokens).ok());
  EXPECT_EQ(tokens, 1 + 2 + 2);
  EXPECT_EQ(e->tokens_used(), 23);

  // $0.02 per 1M tokens: 1000 tokens = $0.00002 = 20000 nano-dollars.
  EXPECT_EQ(e->CostNanoDollars(1000), 20000);
  EXPECT_EQ(e->CostNanoDollars(0), 0);
  auto free = Make(Options());
  ASSERT_NE(free, nullptr);
  EXPECT_EQ(free->CostNanoDollars(1000000), 0);
}

TEST_F(HttpEmbedderTest, ProbesDimensionWhenZero) {
  HttpEmbedderOptions o = Options();
  o.dimension = 0;
  auto e = Make(o);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dimension(), kDim);
  EXPECT_EQ(e->name(), "http:test-model/8");
  EXPECT_EQ(server_.calls(), 1);
  EXPECT_GT(e->tokens_used(), 0);

  // A failing probe fails Create with the server's message.
  server_.FailFirst(server_.calls() + 1, Fault::k400);
  auto bad = HttpEmbedder::Create(o);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(bad.status()), HasSubstr("probing the dimension"));
  EXPECT_THAT(Msg(bad.status()), HasSubstr("maximum context length"));
}

TEST_F(HttpEmbedderTest, SendsDimensionsWhenAsked) {
  HttpEmbedderOptions o = Options();
  o.request_dimensions = true;
  ASSERT_TRUE(EmbedHello(o).ok());
  EXPECT_EQ(server_.last_request()["dimensions"], kDim);
}

TEST_F(HttpEmbedderTest, AcceptsBaseUrlEndingInV1) {
  HttpEmbedderOptions o = Options();
  o.base_url = server_.base_url() + "/v1/";
  auto e = Make(o);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->endpoint(), server_.base_url() + "/v1/embeddings");
  std::vector<std::string> texts = {"hello"};
  std::vector<float> out;
  EXPECT_TRUE(e->Embed(texts, &out).ok());
}

TEST_F(HttpEmbedderTest, ValidatesOptions) {
  HttpEmbedderOptions o = Options();
  o.base_url = "ftp://example";
  EXPECT_EQ(HttpEmbedder::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options();
  o.model = "";
  EXPECT_EQ(HttpEmbedder::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options();
  o.max_batch = 0;
  EXPECT_EQ(HttpEmbedder::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options();
  o.dimension = 0;
  o.request_dimensions = true;
  EXPECT_EQ(HttpEmbedder::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options();
  o.usd_per_million_tokens = -1;
  EXPECT_EQ(HttpEmbedder::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options();
  o.timeout = absl::ZeroDuration();
  EXPECT_EQ(HttpEmbedder::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.calls(), 0);

  auto e = Make(Options());
  ASSERT_NE(e, nullptr);
  std::vector<std::string> texts = {"hello"};
  EXPECT_EQ(e->Embed(texts, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(HttpEmbedderTest, ConcurrentCalls) {
  HttpEmbedderOptions o = Options();
  o.max_batch = 3;
  auto e = Make(o);
  ASSERT_NE(e, nullptr);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  // Four clients: more overflow the stub's listen backlog, and dropped SYNs
  // then cost a second each.
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::string> texts;
      for (int i = 0; i < 7; ++i) texts.push_back(absl::StrCat(t, "-", i));
      for (int round = 0; round < 5; ++round) {
        std::vector<float> out;
        if (!e->Embed(texts, &out).ok()) {
          ++failures;
          continue;
        }
        for (size_t i = 0; i < texts.size(); ++i) {
          const std::vector<float> want = Normalized(RawVector(texts[i], kDim));
          for (int j = 0; j < kDim; ++j) {
            if (std::fabs(out[i * kDim + j] - want[j]) > 1e-6) ++failures;
          }
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(server_.calls(), 4 * 5 * 3);
}

}  // namespace
}  // namespace promptcache
