// Eviction policy benchmark: dollars saved per policy at several byte
// budgets, replaying one skewed workload.
//
//   policy_bench [--requests=60000] [--prompts=20000] [--zipf=0.9]
//                [--budgets_mb=2,4,8,16] [--semantic] [--seed=1]
//
// The workload: `prompts` distinct questions asked with Zipf-distributed
// popularity; each question belongs to one model (60% gpt-4o-mini, 20%
// gpt-4o, 12% claude-sonnet-4-5, 8% claude-opus-4-1: cheap models dominate
// traffic, as in practice) and has an answer of a fixed, varied size
// (log-normal, median ~1.5 KB, 200 B to 24 KB); with --semantic, 10% of
// requests are rewordings of their question. Every policy sees the same
// request sequence. The upstream is simulated (answers of the right size,
// usage from the sizes); the cache is real (RocksDB, eviction, semantic
// tier). Reported per policy and budget: dollars saved, hit rate, entries
// evicted. Hit statistics are flushed every 50 requests (see Replay).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "promptcache/builtin_embedder.h"
#include "promptcache/cache.h"
#include "promptcache/cached_client.h"

namespace {

using promptcache::CachedClient;
using promptcache::CacheStatus;
using promptcache::EvictionPolicy;

struct Prompt {
  std::string question;
  std::string model;
  std::string backend;
  int answer_bytes = 0;
};

struct Call {
  int prompt = 0;
  bool reworded = false;
};

std::vector<Prompt> MakePrompts(int n, std::mt19937_64& rng) {
  const char* topics[] = {"router", "invoice",  "password",   "shipping",
                          "refund", "warranty", "thermostat", "doorbell"};
  const char* verbs[] = {"configure", "reset",    "cancel",  "update",
                         "check",     "transfer", "install", "replace"};
  std::lognormal_distribution<double> size(std::log(1500.0), 0.9);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Prompt> prompts(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Prompt& p = prompts[static_cast<size_t>(i)];
    p.question = absl::StrCat("How do I ", verbs[i % 8], " the ",
                              topics[(i / 8) % 8], " for account ", i, "?");
    const double m = u(rng);
    if (m < 0.60) {
      p.model = "gpt-4o-mini", p.backend = "openai";
    } else if (m < 0.80) {
      p.model = "gpt-4o", p.backend = "openai";
    } else if (m < 0.92) {
      p.model = "claude-sonnet-4-5", p.backend = "anthropic";
    } else {
      p.model = "claude-opus-4-1", p.backend = "anthropic";
    }
    p.answer_bytes = static_cast<int>(std::clamp(size(rng), 200.0, 24000.0));
  }
  return prompts;
}

std::vector<Call> MakeCalls(int requests, int prompts, double zipf,
                            bool semantic, std::mt19937_64& rng) {
  std::vector<double> cdf(static_cast<size_t>(prompts));
  double sum = 0;
  for (int i = 0; i < prompts; ++i) {
    sum += 1.0 / std::pow(i + 1, zipf);
    cdf[static_cast<size_t>(i)] = sum;
  }
  // Popularity is not related to the prompt's model or size.
  std::vector<int> rank(static_cast<size_t>(prompts));
  for (int i = 0; i < prompts; ++i) rank[static_cast<size_t>(i)] = i;
  std::shuffle(rank.begin(), rank.end(), rng);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Call> calls(static_cast<size_t>(requests));
  for (Call& c : calls) {
    const double x = u(rng) * sum;
    const size_t r = static_cast<size_t>(
        std::lower_bound(cdf.begin(), cdf.end(), x) - cdf.begin());
    c.prompt = rank[std::min(r, cdf.size() - 1)];
    c.reworded = semantic && u(rng) < 0.10;
  }
  return calls;
}

struct Result {
  double saved = 0;
  double spent = 0;
  double hit_rate = 0;
  int64_t evicted = 0;
  int64_t entries = 0;
};

Result Replay(const std::vector<Prompt>& prompts,
              const std::vector<Call>& calls, size_t budget,
              EvictionPolicy policy, bool semantic) {
  const std::string dir = absl::StrCat(
      std::filesystem::temp_directory_path().string(), "/promptcache-policy-",
      getpid(), "-", static_cast<int>(policy), "-", budget);
  std::filesystem::remove_all(dir);
  Result result;
  {
    promptcache::Options o;
    o.max_bytes = budget;
    o.eviction = policy;
    o.hot_cache_bytes = 0;  // Measure the policy, not the hot cache.
    if (semantic) o.embedder = std::make_shared<promptcache::BuiltinEmbedder>();
    auto cache = promptcache::Cache::Open(dir, o);
    if (!cache.ok()) {
      std::fprintf(stderr, "open: %s\n", cache.status().ToString().c_str());
      std::exit(1);
    }
    promptcache::ModelClient upstream = [&](const promptcache::Request& r)
        -> absl::StatusOr<promptcache::Response> {
      // The size travels in the question's account number's prompt.
      promptcache::Response answer;
      const Prompt* p = nullptr;
      for (const auto& m : r.messages) {
        if (m.role == "user") {
          const size_t at = m.content.rfind("#");
          if (at != std::string::npos) {
            p = &prompts[static_cast<size_t>(
                std::stoi(m.content.substr(at + 1)))];
          }
        }
      }
      const int bytes = p ? p->answer_bytes : 1000;
      // Distinct texts: identical answers would share one stored body.
      answer.text = absl::StrCat(r.messages.back().content, " ",
                                 std::string(static_cast<size_t>(bytes), 'a'));
      answer.finish_reason = "stop";
      answer.usage.input_tokens = 300;
      answer.usage.output_tokens = bytes / 4;
      answer.upstream_latency = absl::Seconds(2);
      return answer;
    };
    CachedClient client(**cache, upstream);
    int64_t hits = 0;
    int64_t n = 0;
    for (const Call& c : calls) {
      // Hit counts reach eviction with the stats flush (every second in
      // production); a replay runs thousands of requests a second, so it
      // flushes every 50 requests to keep the same information lag as
      // traffic of ~50 requests/s.
      if (++n % 50 == 0) (*cache)->FlushStats().IgnoreError();
      const Prompt& p = prompts[static_cast<size_t>(c.prompt)];
      promptcache::Request r;
      r.ns = "bench";
      r.backend = p.backend;
      r.model = p.model;
      r.params.temperature = 0;
      r.messages.push_back(
          {"system", "You are the Acme support assistant.", "", "", ""});
      r.messages.push_back({"user",
                            absl::StrCat(c.reworded ? "Please tell me: " : "",
                                         p.question, " #", c.prompt),
                            "", "", ""});
      absl::StatusOr<promptcache::Response> got = client.Complete(r);
      if (got.ok() && (got->cache_status == CacheStatus::kExactHit ||
                       got->cache_status == CacheStatus::kSemanticHit)) {
        ++hits;
      }
    }
    const promptcache::SavingsReport report = *(*cache)->Report();
    const promptcache::CacheStats stats = *(*cache)->Stats();
    result.saved = static_cast<double>(report.total.saved_nusd) / 1e9;
    result.spent = static_cast<double>(report.total.spent_nusd) / 1e9;
    result.hit_rate = static_cast<double>(hits) /
                      static_cast<double>(std::max<size_t>(1, calls.size()));
    result.evicted = stats.evicted_entries;
    result.entries = stats.entries;
  }
  std::filesystem::remove_all(dir);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Dollars saved per eviction policy and byte budget"};
  int requests = 60000, prompts = 20000;
  double zipf = 0.9;
  std::string budgets_text = "2,4,8,16";
  bool semantic = false;
  uint64_t seed = 1;
  app.add_option("--requests", requests)->capture_default_str();
  app.add_option("--prompts", prompts)->capture_default_str();
  app.add_option("--zipf", zipf)->capture_default_str();
  app.add_option("--budgets_mb", budgets_text)->capture_default_str();
  app.add_flag("--semantic", semantic, "10% rewordings, builtin embedder");
  app.add_option("--seed", seed)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::mt19937_64 rng(seed);
  const std::vector<Prompt> all = MakePrompts(prompts, rng);
  const std::vector<Call> calls =
      MakeCalls(requests, prompts, zipf, semantic, rng);
  // The whole working set, for scale.
  double total_kb = 0;
  for (const Prompt& p : all) total_kb += p.answer_bytes / 1024.0;
  std::printf(
      "%d requests over %d prompts (Zipf %.2f%s); answers total %.1f MiB\n\n",
      requests, prompts, zipf, semantic ? ", 10% rewordings" : "",
      total_kb / 1024);
  std::printf("%-10s %-6s %12s %12s %9s %9s %9s\n", "budget", "policy",
              "saved $", "spent $", "hit rate", "evicted", "entries");
  for (absl::string_view b : absl::StrSplit(budgets_text, ',')) {
    const size_t mb = std::stoul(std::string(b));
    for (auto [policy, name] : {std::pair{EvictionPolicy::kGdsf, "gdsf"},
                                std::pair{EvictionPolicy::kLru, "lru"},
                                std::pair{EvictionPolicy::kLfu, "lfu"}}) {
      const Result r = Replay(all, calls, mb << 20, policy, semantic);
      std::printf("%-10s %-6s %12.4f %12.4f %8.1f%% %9lld %9lld\n",
                  absl::StrCat(mb, " MiB").c_str(), name, r.saved, r.spent,
                  100 * r.hit_rate, static_cast<long long>(r.evicted),
                  static_cast<long long>(r.entries));
      std::fflush(stdout);
    }
  }
  return 0;
}
