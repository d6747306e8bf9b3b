// Canonical form and keys: what must and must not change the exact key.
#include "promptcache/keys.h"

#include <cstdio>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "request/canonical_internal.h"
#include "request/json_text.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeRequest;

Key128 Exact(const Request& r) {
  absl::StatusOr<RequestKeys> keys = ComputeKeys(r);
  EXPECT_TRUE(keys.ok()) << keys.status();
  return keys.ok() ? keys->exact : Key128{};
}

TEST(KeysTest, HexAndBytesRoundTrip) {
  const Key128 k = HashBytes("hello");
  EXPECT_EQ(k.ToHex().size(), 32u);
  EXPECT_EQ(*Key128::FromHex(k.ToHex()), k);
  EXPECT_EQ(*Key128::FromBytes(k.ToBytes()), k);
  EXPECT_FALSE(Key128::FromHex("xyz").ok());
  EXPECT_FALSE(Key128::FromHex(std::string(32, 'g')).ok());
  EXPECT_FALSE(Key128::FromBytes("short").ok());
}

TEST(KeysTest, OmittedParamsEqualDefaults) {
  Request a = MakeRequest("What is RocksDB?");
  Request b = a;
  b.params.temperature = 1.0;
  b.params.top_p = 1;
  EXPECT_EQ(Exact(a), Exact(b));
  b.params.temperature = 0.7;
  EXPECT_NE(Exact(a), Exact(b));
  // An empty namespace is the "default" namespace.
  Request c = a, d = a;
  c.ns = "";
  d.ns = "default";
  EXPECT_EQ(Exact(c), Exact(d));
}

TEST(KeysTest, JsonKeyOrderAndWhitespaceDoNotMatter) {
  Request a = MakeRequest("weather?");
  Request b = a;
  a.params.tools_json =
      R"([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])";
  b.params.tools_json = R"( [ { "function" : { "parameters" : { "properties" :
      { "city" : { "type" : "string" } }, "type" : "object" },
      "name" : "get_weather" }, "type" : "function" } ] )";
  EXPECT_EQ(Exact(a), Exact(b));
  a.params.response_format_json = R"({"type":"json_object"})";
  b.params.response_format_json = "{ \"type\" :\n \"json_object\" }";
  EXPECT_EQ(Exact(a), Exact(b));
  a.params.extra_json = R"({"frequency_penalty":0.5,"presence_penalty":1.0})";
  b.params.extra_json = R"({"presence_penalty":1,"frequency_penalty":0.50})";
  EXPECT_EQ(Exact(a), Exact(b));
  // Transport-only keys are ignored.
  b.params.extra_json =
      R"({"presence_penalty":1,"frequency_penalty":0.5,"stream":true,"user":"u1"})";
  EXPECT_EQ(Exact(a), Exact(b));
  b.params.extra_json = R"({"presence_penalty":1,"frequency_penalty":0.6})";
  EXPECT_NE(Exact(a), Exact(b));
}

TEST(KeysTest, StopSequencesAreASet) {
  Request a = MakeRequest("count");
  Request b = a;
  a.params.stop = {"\n\n", "END"};
  b.params.stop = {"END", "\n\n", "END"};
  EXPECT_EQ(Exact(a), Exact(b));
  b.params.stop = {"END"};
  EXPECT_NE(Exact(a), Exact(b));
}

// Property: every single-field change changes the key; the key is a
// function of the request only.
TEST(KeysTest, AnyChangeChangesTheKey) {
  std::mt19937 rng(42);
  const std::string alphabet = "abcdefghij KLMNOP 0123456789 éü€\n\"\\";
  auto random_text = [&](size_t n) {
    std::string s;
    while (s.size() < n) {
      // Pick whole UTF-8 characters.
      static const char* kPieces[] = {"a", "b",  "Z",  " ",  "0",  "9", "é",
                                      "€", "\n", "\"", "\\", "\t", "x"};
      s += kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))];
    }
    return s;
  };
  (void)alphabet;
  // Names take no control characters (they are refused).
  auto random_name = [&](size_t n) {
    std::string s = random_text(n);
    std::erase_if(s, [](char c) { return c == '\n' || c == '\t'; });
    return s.empty() ? std::string("n") : s;
  };
  for (int trial = 0; trial < 300; ++trial) {
    Request base;
    base.ns = random_name(1 + rng() % 8);
    base.backend = "openai";
    base.model = "gpt-" + random_name(1 + rng() % 5);
    const int turns = 1 + rng() % 4;
    for (int t = 0; t < turns; ++t) {
      base.messages.push_back({t % 2 == 0 ? "user" : "assistant",
                               random_text(rng() % 40), "", "", ""});
    }
    base.params.temperature = (rng() % 20) / 10.0;
    base.params.max_tokens = 1 + rng() % 1000;
    const Key128 k = Exact(base);
    EXPECT_EQ(k, Exact(base)) << "deterministic";

    std::vector<Request> variants;
    auto vary = [&](auto change) {
      Request v = base;
      change(v);
      variants.push_back(v);
    };
    vary([](Request& v) { v.ns += "x"; });
    vary([](Request& v) { v.backend = "anthropic"; });
    vary([](Request& v) { v.model += "1"; });
    vary([](Request& v) { v.messages.back().content += " "; });
    vary([](Request& v) { v.messages.front().content += "?"; });
    vary([](Request& v) {
      v.messages.back().role =
          v.messages.back().role == "user" ? "assistant" : "user";
    });
    vary([](Request& v) { v.messages.back().name = "bob"; });
    vary([](Request& v) { v.messages.push_back({"user", "", "", "", ""}); });
    vary([](Request& v) { v.messages.pop_back(); });
    vary([](Request& v) { *v.params.temperature += 0.05; });
    vary([](Request& v) { v.params.top_p = 0.9; });
    vary([](Request& v) { *v.params.max_tokens += 1; });
    vary([](Request& v) { v.params.seed = 7; });
    vary([](Request& v) { v.params.stop = {"\n"}; });
    vary([](Request& v) { v.params.tools_json = "[]"; });
    vary([](Request& v) { v.params.tool_choice_json = "\"auto\""; });
    vary([](Request& v) {
      v.params.response_format_json = R"({"type":"json_object"})";
    });
    vary([](Request& v) { v.params.extra_json = R"({"logit_bias":{}})"; });
    for (size_t i = 0; i < variants.size(); ++i) {
      if (variants[i].messages.empty()) continue;
      EXPECT_NE(Exact(variants[i]), k) << "variant " << i << " trial " << trial;
    }
  }
}

TEST(KeysTest, MessageBoundariesAreUnambiguous) {
  Request a = MakeRequest("x");
  Request b = a;
  a.messages = {{"user", "ab", "", "", ""}, {"user", "c", "", "", ""}};
  b.messages = {{"user", "a", "", "", ""}, {"user", "bc", "", "", ""}};
  EXPECT_NE(Exact(a), Exact(b));
}

TEST(KeysTest, ScopeAndContextKeys) {
  Request a = MakeRequest("How do I reset my password?");
  Request b = MakeRequest("How can I change my password?");
  RequestKeys ka = *ComputeKeys(a), kb = *ComputeKeys(b);
  EXPECT_NE(ka.exact, kb.exact);
  EXPECT_EQ(ka.scope, kb.scope);
  EXPECT_EQ(ka.context, kb.context);
  // A different system prompt changes the context, not the scope.
  b.messages[0].content = "You are a pirate.";
  kb = *ComputeKeys(b);
  EXPECT_EQ(ka.scope, kb.scope);
  EXPECT_NE(ka.context, kb.context);
  // Earlier turns are context.
  Request c = a;
  c.messages.insert(c.messages.begin() + 1,
                    {{"user", "I use the mobile app", "", "", ""},
                     {"assistant", "OK", "", "", ""}});
  EXPECT_NE(ComputeKeys(c)->context, ka.context);
  // Turns after the last user turn (a tool loop) and the user's name are
  // context too: only the user's text may differ between near-duplicates.
  Request tool_loop = a;
  tool_loop.messages.push_back(
      {"assistant", "", "", "",
       R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}])"});
  tool_loop.messages.push_back({"tool", "18C sunny", "", "c1", ""});
  EXPECT_NE(ComputeKeys(tool_loop)->context, ka.context);
  Request other_tool_result = tool_loop;
  other_tool_result.messages.back().content = "25C rain";
  EXPECT_NE(ComputeKeys(other_tool_result)->context,
            ComputeKeys(tool_loop)->context);
  Request named = a;
  named.messages.back().name = "alice";
  EXPECT_NE(ComputeKeys(named)->context, ka.context);
  // Another model, namespace or temperature changes the scope.
  Request d = a;
  d.model = "gpt-4o";
  EXPECT_NE(ComputeKeys(d)->scope, ka.scope);
  d = a;
  d.ns = "tenant-b";
  EXPECT_NE(ComputeKeys(d)->scope, ka.scope);
  d = a;
  d.params.temperature = 0;
  EXPECT_NE(ComputeKeys(d)->scope, ka.scope);
}

TEST(KeysTest, CanonicalFormIsDocumentedJsonAndRoundTrips) {
  Request a = MakeRequest("Ünïcödé \"quoted\"\n");
  a.params.temperature = 0.25;
  a.params.max_tokens = 300;
  a.params.stop = {"b", "a"};
  a.params.tools_json = R"([{"type":"function","function":{"name":"f"}}])";
  a.messages.push_back(
      {"assistant", "", "", "",
       R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}])"});
  a.messages.push_back({"tool", "42", "", "c1", ""});
  a.messages.push_back({"user", "thanks", "", "", ""});
  absl::StatusOr<std::string> canonical = CanonicalRequest(a);
  ASSERT_TRUE(canonical.ok()) << canonical.status();
  EXPECT_EQ(canonical->rfind("{\"backend\":\"openai\",\"messages\":[", 0), 0u)
      << *canonical;
  EXPECT_NE(canonical->find("\"stop\":[\"a\",\"b\"]"), std::string::npos);
  EXPECT_NE(canonical->find("\"temperature\":0.25"), std::string::npos);
  absl::StatusOr<Request> back = RequestFromCanonical(*canonical);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*CanonicalRequest(*back), *canonical);
  EXPECT_EQ(Exact(*back), Exact(a));
  ASSERT_NE(LastUserMessage(*back), nullptr);
  EXPECT_EQ(LastUserMessage(*back)->content, "thanks");
}

TEST(KeysTest, BadInputsAreClearErrors) {
  auto error_of = [](const Request& r) {
    absl::StatusOr<RequestKeys> k = ComputeKeys(r);
    EXPECT_FALSE(k.ok());
    EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(k.status().message());
  };
  Request r = MakeRequest("hi");
  r.messages.clear();
  EXPECT_NE(error_of(r).find("messages is empty"), std::string::npos);
  r = MakeRequest("hi");
  r.model = "";
  EXPECT_NE(error_of(r).find("model is empty"), std::string::npos);
  r = MakeRequest("hi");
  r.backend = "";
  EXPECT_NE(error_of(r).find("backend is empty"), std::string::npos);
  // JSON nested 100,000 deep once overflowed the stack (issue 14, defect
  // 5): refused, named; 64 levels are accepted.
  r = MakeRequest("hi");
  r.params.extra_json =
      "{\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_NE(error_of(r).find("params.extra_json is nested deeper than 64"),
            std::string::npos);
  r = MakeRequest("hi");
  r.params.tools_json = std::string(65, '[') + std::string(65, ']');
  EXPECT_NE(error_of(r).find("params.tools_json is nested deeper"),
            std::string::npos);
  r = MakeRequest("hi");
  r.params.tools_json = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(ComputeKeys(r).ok());
  // Brackets inside strings are text, not nesting.
  r.params.tools_json = "[\"" + std::string(1000, '[') + "\"]";
  EXPECT_TRUE(ComputeKeys(r).ok());
  // Control characters in names would end up in stored keys and ledger
  // rows ("m\0x" once merged rows and bricked an open): refused, named.
  r = MakeRequest("hi");
  r.model = std::string("bad-\0x", 6);
  EXPECT_NE(error_of(r).find("request.model contains a control character"),
            std::string::npos);
  r = MakeRequest("hi");
  r.model = std::string(100 * 1024, 'm');
  EXPECT_NE(error_of(r).find("request.model is 102400 bytes; names are at "
                             "most 256"),
            std::string::npos);
  r = MakeRequest("hi");
  r.model = std::string(256, 'm');
  EXPECT_TRUE(ComputeKeys(r).ok());
  r = MakeRequest("hi");
  r.ns = "a\topenai";
  EXPECT_NE(error_of(r).find("request.ns contains a control character"),
            std::string::npos);
  r = MakeRequest("hi");
  r.backend =
      "open\x7f"
      "ai";
  EXPECT_NE(error_of(r).find("request.backend"), std::string::npos);
  r = MakeRequest("bad \xC3\x28 utf8");
  EXPECT_NE(error_of(r).find("messages[1].content is not valid UTF-8"),
            std::string::npos);
  r = MakeRequest("surrogate \xED\xA0\x80");
  EXPECT_NE(error_of(r).find("UTF-8"), std::string::npos);
  r = MakeRequest("overlong \xC0\xAF");
  EXPECT_NE(error_of(r).find("UTF-8"), std::string::npos);
  r = MakeRequest("truncated \xE2\x82");
  EXPECT_NE(error_of(r).find("UTF-8"), std::string::npos);
  r = MakeRequest(std::string(10 << 20, 'a'));
  EXPECT_NE(error_of(r).find("limit"), std::string::npos);
  r = MakeRequest("hi");
  r.messages[0].role = "";
  EXPECT_NE(error_of(r).find("messages[0].role is empty"), std::string::npos);
  r = MakeRequest("hi");
  r.params.tools_json = "[{";
  EXPECT_NE(error_of(r).find("params.tools_json is not valid JSON"),
            std::string::npos);
  r = MakeRequest("hi");
  r.params.temperature = std::nan("");
  EXPECT_NE(error_of(r).find("temperature"), std::string::npos);
  r = MakeRequest("hi");
  r.params.top_p = 1.5;
  EXPECT_NE(error_of(r).find("top_p"), std::string::npos);
  r = MakeRequest("hi");
  r.params.max_tokens = 0;
  EXPECT_NE(error_of(r).find("max_tokens"), std::string::npos);
  r = MakeRequest("hi");
  r.params.extra_json = R"({"temperature":0})";
  EXPECT_NE(error_of(r).find("duplicates"), std::string::npos);
  r = MakeRequest("hi");
  r.params.extra_json = "[1]";
  EXPECT_NE(error_of(r).find("JSON object"), std::string::npos);
  // Valid multi-byte UTF-8 is accepted.
  EXPECT_TRUE(ComputeKeys(MakeRequest("日本語 😀 ü")).ok());
}

TEST(KeysTest, RequestFromCanonicalRejectsGarbage) {
  EXPECT_FALSE(RequestFromCanonical("not json").ok());
  EXPECT_FALSE(RequestFromCanonical("{}").ok());
  EXPECT_FALSE(RequestFromCanonical(R"({"v":1,"ns":"a"})").ok());
}

// Requests covering every part of the canonical form.
std::vector<Request> GoldenRequests() {
  std::vector<Request> out;
  Request a;
  a.backend = "openai";
  a.model = "gpt-4o-mini";
  a.messages = {{"system", "You are terse.", "", "", ""},
                {"user", "How do I reset my password?", "", "", ""}};
  out.push_back(a);

  Request b = a;
  b.ns = "tenant-b";
  std::string tricky;
  for (int i = 0; i < 5; ++i) {
    tricky += "\xC3\x9Cn\xC3\xAF \"quoted\"\n\t\\ \x01\x1F/ ";
    tricky += "\xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 0123456789abcdef";
    tricky += std::string(static_cast<size_t>(i), 'x');
  }
  b.messages[1].content = tricky;
  b.messages[0].name = "sys\"name";
  out.push_back(b);

  Request c = a;
  c.params.temperature = 0.7;
  c.params.top_p = 0.9;
  c.params.max_tokens = 100;
  c.params.seed = 42;
  c.params.stop = {"b", "a\n", "b"};
  c.params.tools_json =
      R"([{"type":"function","function":{"name":"f","parameters":{"b":1,"a":2.50}}}])";
  c.params.tool_choice_json = R"( "auto" )";
  c.params.response_format_json = R"({"type":"json_object"})";
  c.params.extra_json =
      R"({"stream":true,"frequency_penalty":0.5,"user":"u","logit_bias":{"2":1,"1":-1}})";
  out.push_back(c);

  Request d = a;
  d.messages[1].name = "alice";
  d.messages.push_back(
      {"assistant", "", "", "",
       R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}])"});
  d.messages.push_back({"tool", "18C sunny", "", "c1", ""});
  d.messages.push_back({"assistant", "It is sunny.", "", "", ""});
  out.push_back(d);

  Request e = a;  // no user turn
  e.messages = {{"system", "Only a system prompt.", "", "", ""},
                {"assistant", "Hello", "", "", ""}};
  out.push_back(e);

  Request f = a;  // several user turns
  f.messages.push_back({"assistant", "Use the link.", "", "", ""});
  f.messages.push_back({"user", "Which link?", "", "", ""});
  f.params.temperature = 0;
  out.push_back(f);
  return out;
}

// Keys are stored on disk: a change to how they are computed (not only to
// the canonical form) would orphan every stored entry. These values were
// computed by the first implementation.
TEST(KeysTest, KeysAreStableAcrossImplementations) {
  const char* const kGolden[][3] = {
      {"6172c2cfa7666e6de0de4072237e8cc0", "676e6e66851358943d46c5666256dfb6",
       "beabf818f4c3ccef9238d01e80803ba4"},
      {"e8ebee54a0647943fee0755250ac5c6c", "3becf6352773b35838ed6710d1de0bea",
       "9b6c43eb375aa330b4bdeeec53f8d72b"},
      {"49ac466078c3d5ecd692416a6134f69a", "6e463e647bc9d6cc517644d27075b7df",
       "61a8c5b95f53b9a7b477944a7a09a02b"},
      {"bd633a82d9ac90b2ec637d5a30b4a271", "676e6e66851358943d46c5666256dfb6",
       "8c3bcaa9252cbf3ef69b07a47e7843ec"},
      {"b09a23c013d3a030525e291bb0778796", "676e6e66851358943d46c5666256dfb6",
       "19dea257e4582c7de358b0eefa3a615b"},
      {"6a07baa67595d76926cd00c825e59302", "8e81c8ba1b68a49cdf5b185ee4d47ad8",
       "6cf785a864ec5371289225ee6188d988"},
  };
  const std::vector<Request> requests = GoldenRequests();
  ASSERT_EQ(requests.size(), std::size(kGolden));
  for (size_t i = 0; i < requests.size(); ++i) {
    absl::StatusOr<CanonicalizedRequest> c = Canonicalize(requests[i]);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->keys.exact.ToHex(), kGolden[i][0]) << i;
    EXPECT_EQ(c->keys.scope.ToHex(), kGolden[i][1]) << i;
    EXPECT_EQ(c->keys.context.ToHex(), kGolden[i][2]) << i;
    EXPECT_EQ(HashBytes(c->canonical), c->keys.exact) << i;
    Key128 fast;
    ASSERT_TRUE(internal::ExactKeyOf(requests[i], {}, &fast)) << i;
    EXPECT_EQ(fast, c->keys.exact) << i;
  }
}

TEST(KeysTest, ExactKeyOfRejectsWhatCanonicalizeRejects) {
  Key128 key;
  Request r = MakeRequest("bad \xC3\x28 utf8");
  EXPECT_FALSE(internal::ExactKeyOf(r, {}, &key));
  r = MakeRequest("hi");
  r.ns = "\xFF";
  EXPECT_FALSE(internal::ExactKeyOf(r, {}, &key));
  r = MakeRequest("hi");
  r.messages[0].role = "";
  EXPECT_FALSE(internal::ExactKeyOf(r, {}, &key));
  r = MakeRequest("hi");
  r.params.stop = {"\xC0\xAF"};
  EXPECT_FALSE(internal::ExactKeyOf(r, {}, &key));
  r = MakeRequest("hi");
  r.params.top_p = 2;
  EXPECT_FALSE(internal::ExactKeyOf(r, {}, &key));
  r = MakeRequest(std::string(100, 'a'));
  EXPECT_FALSE(internal::ExactKeyOf(r, {.max_request_bytes = 64}, &key));
  EXPECT_TRUE(internal::ExactKeyOf(MakeRequest("hi"), {}, &key));
}

// Reference escaping, one byte at a time.
std::string SlowJsonString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char u : text) {
    if (u == '"') {
      out += "\\\"";
    } else if (u == '\\') {
      out += "\\\\";
    } else if (u == '\n') {
      out += "\\n";
    } else if (u == '\r') {
      out += "\\r";
    } else if (u == '\t') {
      out += "\\t";
    } else if (u == '\b') {
      out += "\\b";
    } else if (u == '\f') {
      out += "\\f";
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else {
      out.push_back(static_cast<char>(u));
    }
  }
  return out + "\"";
}

// The escaping and UTF-8 checks work 16 bytes at a time: special bytes at
// every offset around a block boundary, valid and invalid sequences.
TEST(KeysTest, EscapingAndUtf8CheckAtEveryOffset) {
  const std::vector<std::pair<std::string, bool>> pieces = {
      {"\"", true},
      {"\\", true},
      {"\n", true},
      {std::string(1, '\0'), true},
      {"\x1F", true},
      {"\x7F", true},
      {"\xC3\xBC", true},
      {"\xE6\x97\xA5", true},
      {"\xF0\x9F\x98\x80", true},
      {"\xC3\x28", false},
      {"\xED\xA0\x80", false},
      {"\xC0\xAF", false},
      {"\xE2\x82", false},
      {"\x80", false},
      {"\xF8\x88\x80\x80", false}};
  for (const auto& [piece, valid] : pieces) {
    for (size_t before = 0; before < 40; ++before) {
      for (size_t after : {0, 1, 15, 16, 17}) {
        const std::string text =
            std::string(before, 'a') + piece + std::string(after, 'b');
        EXPECT_EQ(internal::IsValidUtf8(text), valid) << before;
        std::string checked;
        EXPECT_EQ(internal::AppendJsonStringIfUtf8(&checked, text), valid);
        std::string plain;
        internal::AppendJsonString(&plain, text);
        EXPECT_EQ(plain, SlowJsonString(text)) << before << " " << after;
        if (valid) {
          EXPECT_EQ(checked, plain);
        }
      }
    }
  }
}

}  // namespace
}  // namespace promptcache
