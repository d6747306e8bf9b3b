// UpstreamOptions, shared by HttpModelClient, HttpEmbedder and the proxy:
// each of them refuses the same bad settings with an error naming the
// field, and each keeps its own defaults.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "promptcache/cache.h"
#include "promptcache/http_embedder.h"
#include "promptcache/http_model_client.h"
#include "promptcache/proxy_server.h"
#include "test_util.h"

namespace promptcache {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKey[] = "sk-upstream-secret";

struct BadCase {
  std::string name;
  std::function<void(UpstreamOptions&)> change;
  std::string field;  // the error names it
};

std::vector<BadCase> BadCases() {
  return {
      {"zero timeout", [](auto& o) { o.timeout = absl::ZeroDuration(); },
       "timeout"},
      {"negative connect timeout",
       [](auto& o) { o.connect_timeout = absl::Seconds(-1); },
       "connect_timeout"},
      {"negative retries", [](auto& o) { o.max_retries = -1; }, "max_retries"},
      {"negative backoff",
       [](auto& o) { o.max_backoff = absl::Milliseconds(-1); }, "backoff"},
      {"header injection",
       [](auto& o) {
         o.extra_headers = {{"X-Org", "a\r\nX-Evil: 1"}};
       },
       "extra header"},
      {"nameless header",
       [](auto& o) {
         o.extra_headers = {{"", "v"}};
       },
       "extra header"},
      {"key with newline",
       [](auto& o) { o.api_key = std::string(kKey) + "\nX-Evil: 1"; },
       "API key"},
  };
}

void ExpectRefused(const absl::Status& status, const BadCase& c,
                   const std::string& who) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
      << who << ", " << c.name << ": " << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(c.field))
      << who << ", " << c.name;
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr(kKey)))
      << who << ", " << c.name;
}

TEST(UpstreamOptionsTest, EveryUpstreamRefusesTheSameBadSettings) {
  testing::TempDir dir;
  Options cache_options;
  cache_options.stats_flush_interval = absl::InfiniteDuration();
  std::unique_ptr<Cache> cache = *Cache::Open(dir.path(), cache_options);
  for (const BadCase& c : BadCases()) {
    HttpModelClientOptions model;
    model.base_url = "http://127.0.0.1:1";
    model.api_key = kKey;
    c.change(model);
    ExpectRefused(HttpModelClient::Create(model).status(), c, "model client");

    HttpEmbedderOptions embed;
    embed.base_url = "http://127.0.0.1:1";
    embed.model = "m";
    embed.dimension = 8;  // no probe request
    embed.api_key = kKey;
    c.change(embed);
    ExpectRefused(HttpEmbedder::Create(embed).status(), c, "embedder");

    ProxyOptions proxy;
    proxy.port = 0;
    proxy.openai.base_url = "http://127.0.0.1:1";
    proxy.allow_unauthenticated_clients = true;  // an own key is fine here
    c.change(proxy.openai);
    ExpectRefused(ProxyServer::Create(*cache, proxy).status(), c, "proxy");
  }
}

TEST(UpstreamOptionsTest, EachUpstreamKeepsItsOwnDefaults) {
  // Model calls may take minutes; embeddings are short.
  const HttpModelClientOptions model;
  EXPECT_EQ(model.timeout, absl::Seconds(600));
  EXPECT_EQ(model.max_retries, 2);
  EXPECT_EQ(model.api_key_env, "");  // OPENAI_ or ANTHROPIC_API_KEY by api
  const HttpEmbedderOptions embed;
  EXPECT_EQ(embed.timeout, absl::Seconds(10));
  EXPECT_EQ(embed.max_retries, 3);
  EXPECT_EQ(embed.initial_backoff, absl::Milliseconds(200));
  EXPECT_EQ(embed.max_backoff, absl::Seconds(10));
  EXPECT_EQ(embed.api_key_env, "OPENAI_API_KEY");
  // The proxy forwards each client's own key unless told otherwise.
  const ProxyOptions proxy;
  EXPECT_EQ(proxy.openai.api_key, "");
  EXPECT_EQ(proxy.openai.api_key_env, "");
  EXPECT_EQ(proxy.openai.base_url, "https://api.openai.com");
  EXPECT_EQ(proxy.anthropic.backend, "anthropic");
}

TEST(UpstreamOptionsTest, AProxyKeyGivenDirectlyNeedsClientKeysToo) {
  testing::TempDir dir;
  std::unique_ptr<Cache> cache = *Cache::Open(dir.path(), Options());
  ProxyOptions proxy;
  proxy.port = 0;
  proxy.openai.api_key = kKey;
  absl::StatusOr<std::unique_ptr<ProxyServer>> refused =
      ProxyServer::Create(*cache, proxy);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("clients must authenticate"));
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("ProxyUpstream::api_key"));
  EXPECT_THAT(std::string(refused.status().message()), Not(HasSubstr(kKey)));
}

}  // namespace
}  // namespace promptcache
