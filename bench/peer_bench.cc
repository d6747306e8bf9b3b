// peer_bench: promptcache on the workload of GPTCache's peer harness
// (bench/peers/workload.py writes it), through CachedClient as a service
// would call it: N puts (misses that store the workload's answer), then gets
// of the stored prompts, of reworded prompts (one word swapped, lower case,
// no '?') and of unseen prompts. Prints one line per phase and, with --json,
// the harness's JSON shape so bench/peers/run.sh can put both side by side.
//
//   peer_bench --workload FILE [--json OUT] [--db DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_split.h"
#include "bench_stats.h"
#include "promptcache/promptcache.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Workload {
  std::vector<std::string> prompts, answers, unseen, perturbed;
  std::vector<int> perturbed_of;  // index of the prompt each one rewords
};

bool ReadWorkload(const std::string& path, Workload* w) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits('\t', 2));
    if (f.size() != 3) return false;
    if (f[0] == "prompt") {
      w->prompts.push_back(f[2]);
    } else if (f[0] == "answer") {
      w->answers.push_back(f[2]);
    } else if (f[0] == "unseen") {
      w->unseen.push_back(f[2]);
    } else if (f[0] == "perturbed") {
      w->perturbed.push_back(f[2]);
      w->perturbed_of.push_back(std::stoi(f[1]));
    } else {
      return false;
    }
  }
  return !w->prompts.empty() && w->prompts.size() == w->answers.size() &&
         w->perturbed.size() == w->prompts.size();
}

promptcache::Request MakeRequest(const std::string& prompt) {
  promptcache::Request r;
  r.backend = "openai";
  r.model = "gpt-4o-mini";
  r.messages.push_back({"user", prompt, "", "", ""});
  return r;
}

using promptcache::bench::Percentile;

struct Phase {
  std::string name;
  std::vector<double> us;
  double wall_s = 0;
  int hits = 0, correct = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"promptcache on GPTCache's peer-harness workload"};
  std::string workload_path, json_path, db;
  app.add_option("--workload", workload_path,
                 "TSV from bench/peers/workload.py")
      ->required();
  app.add_option("--json", json_path, "write the phases as JSON");
  app.add_option("--db", db, "cache path (default: a temp dir, removed)");
  CLI11_PARSE(app, argc, argv);
  Workload w;
  if (!ReadWorkload(workload_path, &w)) {
    std::fprintf(stderr, "peer_bench: %s is not a workload file\n",
                 workload_path.c_str());
    return 1;
  }
  const bool temp = db.empty();
  if (temp) {
    db = (std::filesystem::temp_directory_path() /
          ("promptcache-peer-bench-" + std::to_string(getpid())))
             .string();
  }
  promptcache::Options options;
  options.embedder = std::make_shared<promptcache::BuiltinEmbedder>();
  auto cache = promptcache::Cache::Open(db, options);
  if (!cache.ok()) {
    std::fprintf(stderr, "%s\n", std::string(cache.status().message()).c_str());
    return 1;
  }
  absl::flat_hash_map<std::string, int> index_of;
  for (size_t i = 0; i < w.prompts.size(); ++i) index_of[w.prompts[i]] = i;
  // The "model": the workload's answer for a stored prompt.
  promptcache::CachedClient client(
      **cache,
      [&](const promptcache::Request& r)
          -> absl::StatusOr<promptcache::Response> {
        promptcache::Response answer;
        auto it = index_of.find(r.messages.back().content);
        answer.text =
            it == index_of.end() ? "fresh answer" : w.answers[it->second];
        answer.finish_reason = "stop";
        return answer;
      });

  std::vector<Phase> phases;
  auto run = [&](const std::string& name, const std::vector<std::string>& qs,
                 const std::vector<int>& expected, bool store) {
    Phase phase;
    phase.name = name;
    int shown_refusals = 0;
    promptcache::CallOptions call;
    call.no_store = !store;
    const auto start = Clock::now();
    for (size_t i = 0; i < qs.size(); ++i) {
      const auto t0 = Clock::now();
      absl::StatusOr<promptcache::Response> r =
          client.Complete(MakeRequest(qs[i]), call);
      phase.us.push_back(
          std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str());
        std::exit(1);
      }
      if (!store && r->cache_status == promptcache::CacheStatus::kMiss &&
          expected[i] >= 0 && ++shown_refusals <= 2) {
        // Why a rewording was refused: the match decision's own words.
        std::printf("  %s: \"%s\" / \"%s\": %s\n", name.c_str(), qs[i].c_str(),
                    w.prompts[expected[i]].c_str(),
                    r->semantic_decision.c_str());
      }
      if (!store && r->cache_status != promptcache::CacheStatus::kMiss) {
        ++phase.hits;
        phase.correct += expected[i] >= 0 && r->text == w.answers[expected[i]];
      }
    }
    phase.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    phases.push_back(std::move(phase));
  };
  std::vector<int> all(w.prompts.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  run("put", w.prompts, all, /*store=*/true);
  // Stores queue their vectors for the index: the put phase ends when all
  // are in (what a search after it sees either way).
  const auto wait_start = Clock::now();
  (*cache)->WaitForSemanticIndex();
  phases.back().wall_s +=
      std::chrono::duration<double>(Clock::now() - wait_start).count();
  std::vector<std::string> exact_queries;
  for (int i : w.perturbed_of) exact_queries.push_back(w.prompts[i]);
  run("get-exact", exact_queries, w.perturbed_of, false);
  run("get-perturbed", w.perturbed, w.perturbed_of, false);
  run("get-miss", w.unseen, std::vector<int>(w.unseen.size(), -1), false);
  // promptcache only (the harness has no such phase): the stored prompts in
  // lower case without their '?', no word swapped: surface rewordings.
  std::vector<std::string> surface;
  for (int i : w.perturbed_of) {
    std::string q = w.prompts[i];
    if (!q.empty() && q.back() == '?') q.pop_back();
    for (char& c : q) c = static_cast<char>(std::tolower(c));
    surface.push_back(q);
  }
  run("get-surface", surface, w.perturbed_of, false);

  std::string json = "{\"system\": \"promptcache\", \"n\": " +
                     std::to_string(w.prompts.size()) + ", \"phases\": [";
  for (size_t p = 0; p < phases.size(); ++p) {
    const Phase& ph = phases[p];
    const double n = static_cast<double>(ph.us.size());
    std::printf(
        "%-14s n=%-6zu ops/s=%9.0f  p50=%8.1fus  p90=%8.1fus  p99=%8.1fus"
        "  hit_rate=%.4f  correct_rate=%.4f\n",
        ph.name.c_str(), ph.us.size(), n / ph.wall_s, Percentile(ph.us, 0.5),
        Percentile(ph.us, 0.90), Percentile(ph.us, 0.99), ph.hits / n,
        ph.correct / n);
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "%s{\"phase\": \"%s\", \"n\": %zu, \"ops_per_s\": %.1f, "
                  "\"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f, "
                  "\"hit_rate\": %.4f, \"correct_rate\": %.4f}",
                  p ? ", " : "", ph.name.c_str(), ph.us.size(), n / ph.wall_s,
                  Percentile(ph.us, 0.5), Percentile(ph.us, 0.90),
                  Percentile(ph.us, 0.99), ph.hits / n, ph.correct / n);
    json += buf;
  }
  json += "]}\n";
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << json;
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  cache->reset();
  if (temp) std::filesystem::remove_all(db);
  return 0;
}
