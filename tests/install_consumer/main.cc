// Opens a cache, misses once, hits once: proves the installed package works.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "promptcache/promptcache.h"

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
  std::printf("consumer ok: %s then %s\n",
              promptcache::CacheStatusName(first->cache_status),
              promptcache::CacheStatusName(second->cache_status));
  return 0;
}
