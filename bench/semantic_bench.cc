// semantic_bench: store rate with the semantic tier on, latency of a
// semantic lookup (embed the last user turn, search the scope's index, judge
// the candidates) through Cache::FindSemantic with N entries in one scope,
// the index's memory, and its recall against an exact (flat) search over the
// same stored vectors.
//
//   semantic_bench --entries 100000 [--queries 5000] [--dimension 256]
//                  [--index ivf|hnsw|flat] [--probes 16] [--list-size 512]
//                  [--hnsw-min 4096] [--ef-search 64] [--recall-queries 1000]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "bench_stats.h"
#include "promptcache/cache_tiers.h"
#include "promptcache/promptcache.h"

namespace {

using Clock = std::chrono::steady_clock;

// Support-style questions from word lists: varied, about 200 characters.
class PromptGenerator {
 public:
  explicit PromptGenerator(uint64_t seed) : rng_(seed) {}
  std::string Next() {
    static const char* kOpen[] = {
        "How do I",    "What is the best way to", "Can you explain how to",
        "Why can't I", "Is it possible to",       "Help me"};
    static const char* kVerb[] = {"configure", "reset",  "export",  "migrate",
                                  "debug",     "deploy", "rename",  "schedule",
                                  "monitor",   "backup", "restore", "share"};
    static const char* kThing[] = {"invoice",  "dashboard", "webhook",
                                   "database", "report",    "pipeline",
                                   "account",  "cluster",   "workspace",
                                   "API key",  "container", "calendar"};
    static const char* kTail[] = {
        "when the sync job fails overnight",
        "for a team of engineers in another region",
        "without losing the existing history and settings",
        "after upgrading from the legacy plan last month",
        "using the command line instead of the web console",
        "so that auditors can review every change later"};
    std::string s = Pick(kOpen);
    s += " ";
    s += Pick(kVerb);
    s += " the ";
    s += Pick(kThing);
    s += " ";
    s += std::to_string(rng_() % 100000);
    s += " ";
    s += Pick(kTail);
    s += " and ";
    s += Pick(kTail);
    s += "?";
    return s;
  }

 private:
  template <size_t N>
  const char* Pick(const char* (&items)[N]) {
    return items[rng_() % N];
  }
  std::mt19937_64 rng_;
};

promptcache::Request MakeRequest(const std::string& question) {
  promptcache::Request r;
  r.ns = "bench";
  r.backend = "openai";
  r.model = "gpt-4o-mini";
  r.messages.push_back({"system", "You are a support assistant.", "", "", ""});
  r.messages.push_back({"user", question, "", "", ""});
  return r;
}

using promptcache::bench::Percentile;

long MaxRssKb() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Semantic lookup latency at N entries in one scope"};
  int64_t entries = 100000;
  int queries = 5000;
  int dimension = 128;
  int hnsw_min = 4096;
  int ef_search = 32;
  int hnsw_m = 16;
  int probes = 16;
  int list_size = 512;
  int recall_queries = 1000;
  double huge_prompt_mb = 5;
  std::string index = "ivf";
  std::string db;
  app.add_option("--entries", entries, "entries in the scope");
  app.add_option("--queries", queries, "lookups to time");
  app.add_option("--dimension", dimension, "built-in embedder dimension");
  app.add_option("--hnsw-min", hnsw_min, "exact search below this size");
  app.add_option("--ef-search", ef_search, "HNSW efSearch");
  app.add_option("--hnsw-m", hnsw_m, "HNSW M (links per node)");
  app.add_option("--index", index, "ivf (default), hnsw or flat")
      ->check(CLI::IsMember({"ivf", "hnsw", "flat"}));
  app.add_option("--probes", probes, "IVF lists scanned per lookup");
  app.add_option("--list-size", list_size, "IVF list size before a split");
  app.add_option("--huge-prompt-mb", huge_prompt_mb,
                 "time a miss of a prompt this large (0: skip)");
  app.add_option("--recall-queries", recall_queries,
                 "rewordings compared with a flat search (0: skip)");
  app.add_option("--db", db, "cache path (default: a temp dir, removed)");
  CLI11_PARSE(app, argc, argv);
  const bool temp = db.empty();
  if (temp) {
    db = (std::filesystem::temp_directory_path() /
          ("promptcache-semantic-bench-" + std::to_string(getpid())))
             .string();
  }

  promptcache::Options options;
  options.embedder = std::make_shared<promptcache::BuiltinEmbedder>(
      promptcache::BuiltinEmbedderOptions{dimension});
  options.semantic.hnsw_min_vectors = hnsw_min;
  options.semantic.hnsw_ef_search = ef_search;
  options.semantic.hnsw_m = hnsw_m;
  options.semantic.ivf_probes = probes;
  options.semantic.ivf_max_list_size = list_size;
  options.semantic.index =
      index == "hnsw"   ? promptcache::SemanticOptions::IndexKind::kHnsw
      : index == "flat" ? promptcache::SemanticOptions::IndexKind::kFlat
                        : promptcache::SemanticOptions::IndexKind::kIvf;
  auto cache = promptcache::Cache::Open(db, options);
  if (!cache.ok()) {
    std::fprintf(stderr, "%s\n", std::string(cache.status().message()).c_str());
    return 1;
  }
  const long rss_before = MaxRssKb();

  // Fill the scope.
  PromptGenerator gen(42);
  std::vector<std::string> stored;
  const auto fill_start = Clock::now();
  for (int64_t i = 0; i < entries; ++i) {
    std::string q = gen.Next();
    promptcache::Request r = MakeRequest(q);
    auto canonical = promptcache::Canonicalize(r);
    promptcache::Response answer;
    answer.text = "A stored answer of moderate length for entry " +
                  std::to_string(i) + ".";
    answer.finish_reason = "stop";
    answer.usage.input_tokens = 60;
    answer.usage.output_tokens = 200;
    if (!promptcache::CacheTiers(**cache)
             .StoreMiss(r, *canonical, std::nullopt, &answer)
             .ok()) {
      std::fprintf(stderr, "store failed at %lld\n", static_cast<long long>(i));
      return 1;
    }
    if (i < queries) stored.push_back(q);
  }
  const double fill_s =
      std::chrono::duration<double>(Clock::now() - fill_start).count();
  // Stores queue their vectors; the fill is done when all are indexed.
  (*cache)->WaitForSemanticIndex();
  const double indexed_s =
      std::chrono::duration<double>(Clock::now() - fill_start).count();
  // Close (flushes memtables, saves the index) and reopen, so lookups are
  // timed on a settled cache, not against background flushes; this also
  // measures open time with saved index files.
  cache->reset();
  const auto open_start = Clock::now();
  cache = promptcache::Cache::Open(db, options);
  if (!cache.ok()) {
    std::fprintf(stderr, "%s\n", std::string(cache.status().message()).c_str());
    return 1;
  }
  const double open_s =
      std::chrono::duration<double>(Clock::now() - open_start).count();

  // Time lookups: half rewordings of stored prompts (should hit), half new
  // prompts (miss after a full search).
  std::vector<double> embed_us, hit_us, miss_us;
  int hits = 0;
  PromptGenerator fresh(7);
  promptcache::BuiltinEmbedder embedder(
      promptcache::BuiltinEmbedderOptions{dimension});
  std::vector<float> v;
  for (int i = 0; i < queries; ++i) {
    const bool reword = i % 2 == 0;
    std::string q = reword ? stored[i % stored.size()] : fresh.Next();
    if (reword) {
      // Same words, different casing and punctuation: a rewording.
      q[0] = static_cast<char>(std::tolower(q[0]));
      q.back() = '.';
      q.insert(0, "please, ");
    }
    promptcache::Request r = MakeRequest(q);
    auto keys = promptcache::ComputeKeys(r);
    auto e0 = Clock::now();
    (void)embedder.Embed({q}, &v);
    embed_us.push_back(
        std::chrono::duration<double, std::micro>(Clock::now() - e0).count());
    auto t0 = Clock::now();
    auto found = promptcache::CacheTiers(**cache).FindSemantic(r, *keys);
    const double us =
        std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    if (found.ok()) {
      ++hits;
      hit_us.push_back(us);
    } else {
      miss_us.push_back(us);
    }
  }
  const auto stats = (*cache)->GetSemanticStats();
  const double raw_mb = entries * dimension * 4.0 / 1e6;
  std::printf(
      "entries %lld, dimension %d, index %s, fill %.1f s (%.0f stores/s), "
      "all indexed after %.1f s (%.0f/s), reopen %.2f s\n",
      static_cast<long long>(entries), dimension, index.c_str(), fill_s,
      entries / fill_s, indexed_s, entries / indexed_s, open_s);
  std::printf("embed (builtin, ~%zu chars): p50 %.1f us  p99 %.1f us\n",
              stored.empty() ? size_t{0} : stored[0].size(),
              Percentile(embed_us, 0.5), Percentile(embed_us, 0.99));
  if (!hit_us.empty()) {
    std::printf(
        "semantic hit  (embed+search+guard): p50 %.1f us  p99 %.1f us  "
        "(%d of %d rewordings hit)\n",
        Percentile(hit_us, 0.5), Percentile(hit_us, 0.99), hits,
        (queries + 1) / 2);
  }
  if (!miss_us.empty()) {
    std::printf(
        "semantic miss (embed+search+guard): p50 %.1f us  p99 %.1f us\n",
        Percentile(miss_us, 0.5), Percentile(miss_us, 0.99));
  }
  std::printf(
      "index memory %.1f MB for %.1f MB of raw vectors (%.2fx); "
      "max RSS %.0f MB (%.0f MB before filling)\n",
      stats.index_memory_bytes / 1e6, raw_mb,
      stats.index_memory_bytes / 1e6 / raw_mb, MaxRssKb() / 1024.0,
      rss_before / 1024.0);

  // Recall: the best candidates of `recall_queries` rewordings by this
  // index, then by an exact search over the same stored vectors (the cache
  // reopened with a flat index rebuilds it from them).
  auto best_candidates = [&](promptcache::Cache& c) {
    std::vector<std::vector<promptcache::Key128>> out;
    for (int i = 0; i < recall_queries; ++i) {
      std::string q = stored[(static_cast<size_t>(i) * 7919) % stored.size()];
      q[0] = static_cast<char>(std::tolower(q[0]));
      q.back() = '.';
      q.insert(0, "please, ");
      auto explained = c.ExplainSemantic(MakeRequest(q));
      out.emplace_back();
      if (!explained.ok()) continue;
      for (const auto& candidate : explained->candidates) {
        out.back().push_back(candidate.entry);
      }
    }
    return out;
  };
  if (recall_queries > 0 && index != "flat") {
    const auto approximate = best_candidates(**cache);
    cache->reset();
    promptcache::Options exact = options;
    exact.semantic.index = promptcache::SemanticOptions::IndexKind::kFlat;
    exact.semantic.rebuild_index_in_background = false;
    cache = promptcache::Cache::Open(db, exact);
    if (!cache.ok()) {
      std::fprintf(stderr, "%s\n",
                   std::string(cache.status().message()).c_str());
      return 1;
    }
    const auto truth = best_candidates(**cache);
    int top1 = 0, in_top_k = 0, asked = 0;
    for (size_t i = 0; i < truth.size(); ++i) {
      if (truth[i].empty()) continue;
      ++asked;
      top1 += !approximate[i].empty() && approximate[i][0] == truth[i][0];
      in_top_k += std::find(approximate[i].begin(), approximate[i].end(),
                            truth[i][0]) != approximate[i].end();
    }
    std::printf(
        "recall against a flat search, %d rewordings: best match found "
        "first %.1f%%, among the top %d %.1f%%\n",
        asked, 100.0 * top1 / std::max(1, asked), options.semantic.top_k,
        100.0 * in_top_k / std::max(1, asked));
    // Back to the index under test (its files were replaced: rebuilt).
  }
  cache->reset();

  // Restart without index files, as after a crash (they are saved only at
  // close): Open with the rebuild inside it, then with the rebuild in the
  // background (the default), where exact hits are served at once.
  for (const bool background : {false, true}) {
    std::filesystem::remove_all(std::filesystem::path(db) / "semantic-index");
    options.semantic.rebuild_index_in_background = background;
    const auto start = Clock::now();
    cache = promptcache::Cache::Open(db, options);
    if (!cache.ok()) {
      std::fprintf(stderr, "%s\n",
                   std::string(cache.status().message()).c_str());
      return 1;
    }
    const double open_after_crash_s =
        std::chrono::duration<double>(Clock::now() - start).count();
    (*cache)->WaitForSemanticIndex();
    const double ready_s =
        std::chrono::duration<double>(Clock::now() - start).count();
    std::printf(
        "open without index files (after a crash), rebuild %s: open returns "
        "in %.3f s, index whole after %.2f s\n",
        background ? "in the background" : "inside Open", open_after_crash_s,
        ready_s);
    cache->reset();
  }

  // A huge prompt's miss through CachedClient (an in-process upstream that
  // answers at once), with the default max_prompt_bytes and with no limit
  // (what every prompt cost before it existed).
  if (huge_prompt_mb > 0) {
    const size_t limit_default =
        promptcache::SemanticOptions{}.max_prompt_bytes;
    const size_t huge_bytes = static_cast<size_t>(huge_prompt_mb * 1048576);
    // (prompt bytes, max_prompt_bytes): huge with the default limit, with no
    // limit, and a prompt just under the default limit.
    const std::pair<size_t, size_t> cases[] = {
        {huge_bytes, limit_default},
        {huge_bytes, 0},
        {limit_default - 64, limit_default}};
    for (const auto& [bytes, limit] : cases) {
      std::string huge = "Summarize this log: ";
      PromptGenerator words(99);
      while (huge.size() < bytes) huge += words.Next() + " ";
      huge.resize(bytes);
      promptcache::Options o = options;
      o.semantic.max_prompt_bytes = limit;
      o.canonical.max_request_bytes = 2 * bytes + 4096;  // default 4 MiB
      const std::string path = db + "-huge";
      auto c = promptcache::Cache::Open(path, o);
      if (!c.ok()) return 1;
      promptcache::CachedClient client(
          **c,
          [](const promptcache::Request&)
              -> absl::StatusOr<promptcache::Response> {
            promptcache::Response r;
            r.text = "A summary.";
            r.finish_reason = "stop";
            return r;
          });
      for (int round = 0; round < 2; ++round) {
        huge[0] = static_cast<char>('A' + round);  // a new prompt: a miss
        const auto start = Clock::now();
        auto r = client.Complete(MakeRequest(huge));
        const double s =
            std::chrono::duration<double>(Clock::now() - start).count();
        std::printf(
            "%.3f MB prompt, miss with the semantic tier on, "
            "max_prompt_bytes %zu: %.3f s (%s)\n",
            huge.size() / 1048576.0, limit, s,
            r.ok() ? "ok" : std::string(r.status().message()).c_str());
      }
      c->reset();
      std::filesystem::remove_all(path);
    }
  }
  if (temp) std::filesystem::remove_all(db);
  return 0;
}
