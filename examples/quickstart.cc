// The smallest useful promptcache program: a cache on disk in front of a
// model client, an exact repeat, a reworded question, and the savings.
//   build/examples/promptcache_quickstart [db-path]
#include <cstdio>
#include <memory>
#include <string>

#include "promptcache/promptcache.h"

int main(int argc, char** argv) {
  promptcache::Options options;  // documented defaults (options.h)
  options.embedder = std::make_shared<promptcache::BuiltinEmbedder>();
  auto cache = promptcache::Cache::Open(
      argc > 1 ? argv[1] : "/tmp/promptcache-quickstart", options);
  if (!cache.ok()) {
    std::fprintf(stderr, "%s\n", cache.status().ToString().c_str());
    return 1;
  }
  // Your model call goes here (HttpModelClient, or your own client).
  promptcache::CachedClient client(
      **cache,
      [](const promptcache::Request& r)
          -> absl::StatusOr<promptcache::Response> {
        promptcache::Response answer;
        answer.text =
            "(the model's answer to: " + r.messages.back().content + ")";
        answer.finish_reason = "stop";
        answer.usage = {.input_tokens = 40, .output_tokens = 300};
        return answer;
      });
  for (const char* question :
       {"How do I reset my router password?",
        "How do I reset my router password?",       // exact repeat
        "how can I reset my router's password"}) {  // reworded
    promptcache::Request request;
    request.backend = "openai";
    request.model = "gpt-4o-mini";
    request.messages.push_back({"user", question, "", "", ""});
    auto response = client.Complete(request);
    if (!response.ok()) {
      std::fprintf(stderr, "%s\n", response.status().ToString().c_str());
      return 1;
    }
    std::printf("%-40s %-13s %s\n", question,
                promptcache::CacheStatusName(response->cache_status),
                response->text.c_str());
  }
  auto report = (*cache)->Report();
  if (report.ok()) {
    std::printf("saved $%.6f on %lld hits\n", report->total.saved_nusd / 1e9,
                static_cast<long long>(report->total.exact_hits +
                                       report->total.semantic_hits));
  }
  return 0;
}
