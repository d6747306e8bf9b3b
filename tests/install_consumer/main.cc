// Opens a cache, misses once, hits once: proves the installed package works.
// With the http / model2vec components it also uses their classes (built
// with WITH_HTTP / WITH_MODEL2VEC).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "promptcache/promptcache.h"
#ifdef WITH_HTTP
#include "promptcache/http_model_client.h"
#endif
#ifdef WITH_PROXY
#include "promptcache/proxy_server.h"
#endif

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto cache = promptcache::Cache::Open(argv[1], promptcache::Options());
  if (!cache.ok()) {
    std::fprintf(stderr, "%s\n", std::string(cache.status().message()).c_str());
    return 1;
  }
  int calls = 0;
  promptcache::CachedClient client(
      **cache,
      [&](const promptcache::Request&)
          -> absl::StatusOr<promptcache::Response> {
        ++calls;
        promptcache::Response r;
        r.text = "pong";
        r.finish_reason = "stop";
        return r;
      });
  promptcache::Request request;
  request.backend = "openai";
  request.model = "gpt-4o-mini";
  request.messages.push_back({"user", "ping", "", "", ""});
  auto first = client.Complete(request);
  auto second = client.Complete(request);
  if (!first.ok() || !second.ok() || calls != 1 ||
      second->cache_status != promptcache::CacheStatus::kExactHit) {
    std::fprintf(stderr, "unexpected: calls=%d\n", calls);
    return 1;
  }
#ifdef WITH_HTTP
  // Nothing listens on port 9: a clear error, from the http component.
  promptcache::HttpModelClientOptions http;
  http.base_url = "http://127.0.0.1:9";
  http.api_key = "none";
  http.max_retries = 0;
  auto upstream = promptcache::HttpModelClient::Create(http);
  if (!upstream.ok() || upstream->Complete(request).ok()) {
    std::fprintf(stderr, "http: expected a refused connection\n");
    return 1;
  }
  std::printf("http component ok\n");
#endif
#ifdef WITH_MODEL2VEC
  // No model directory: a clear error, from the model2vec component.
  if (promptcache::Model2VecEmbedder::Load(argv[1] + std::string("/none"))
          .ok()) {
    return 1;
  }
  std::printf("model2vec component ok\n");
#endif
#ifdef WITH_PROXY
  // A proxy on a free port of 127.0.0.1, from the proxy component.
  promptcache::ProxyOptions proxy_options;
  proxy_options.host = "127.0.0.1";
  proxy_options.port = 0;
  auto proxy = promptcache::ProxyServer::Create(**cache, proxy_options);
  if (!proxy.ok() || !(*proxy)->Start().ok() || (*proxy)->port() <= 0) {
    std::fprintf(stderr, "proxy: could not start\n");
    return 1;
  }
  (*proxy)->Shutdown();
  std::printf("proxy component ok\n");
#endif
  std::printf("consumer ok: %s then %s\n",
              promptcache::CacheStatusName(first->cache_status),
              promptcache::CacheStatusName(second->cache_status));
  return 0;
}
