// promptcache_demo: replays a recorded mix of LLM traffic through a
// CachedClient in front of a simulated upstream, then prints what the cache
// answered and what that saved, per namespace, backend and model.
//
//   promptcache_demo [--workload PATH] [--db PATH] [--threads N]
//                    [--latency-scale X] [--no-semantic]
//
// The upstream is simulated so that the demo needs no API keys and gives the
// same numbers on every run: answers, token counts and latencies are derived
// from a hash of the request.
//
// The semantic tier is on (built-in embedder; --no-semantic turns it off).
// Each line of the workload says which question it asks ("question": lines
// with the same number may share an answer), and some are marked as a
// rewording of an earlier line ("kind": "rewording", "variant_of": its index)
// or as a look-alike of it ("kind": "hard_negative": another number, name or
// verb). The demo counts what the cache did with them, and fails when a
// semantic hit answered another question.

#include <stdlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "promptcache/promptcache.h"
#include "simulated_upstream.h"

#ifndef PROMPTCACHE_DEMO_WORKLOAD
#define PROMPTCACHE_DEMO_WORKLOAD "examples/data/workload.jsonl"
#endif

namespace {

using promptcache::CacheStatus;
using promptcache::Request;
using promptcache::Response;

// ---------------------------------------------------------------------------
// Workload

absl::StatusOr<Request> RequestFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object");
  Request r;
  r.ns = j.value("ns", "");
  r.backend = j.value("backend", "");
  r.model = j.value("model", "");
  if (!j.contains("messages") || !j["messages"].is_array()) {
    return absl::InvalidArgumentError("missing \"messages\" array");
  }
  for (const auto& m : j["messages"]) {
    promptcache::Message msg;
    msg.role = m.value("role", "");
    msg.content = m.value("content", "");
    msg.name = m.value("name", "");
    r.messages.push_back(std::move(msg));
  }
  if (j.contains("params")) {
    const auto& p = j["params"];
    if (p.contains("temperature")) {
      r.params.temperature = p["temperature"].get<double>();
    }
    if (p.contains("top_p")) r.params.top_p = p["top_p"].get<double>();
    if (p.contains("max_tokens")) {
      r.params.max_tokens = p["max_tokens"].get<int64_t>();
    }
    if (p.contains("seed")) r.params.seed = p["seed"].get<int64_t>();
  }
  return r;
}

// What the workload says about a request: which question it asks, and
// whether it is a variant of an earlier request (`of`, its 0-based index).
struct Variant {
  enum Kind { kNone, kRewording, kLookalike };
  Kind kind = kNone;
  size_t of = 0;
  int64_t question = -1;  // -1: not given
};

struct Workload {
  std::vector<Request> requests;
  std::vector<Variant> variants;  // one per request
};

absl::StatusOr<Variant> VariantFromJson(const nlohmann::json& j, size_t index) {
  Variant v;
  if (j.contains("question")) v.question = j["question"].get<int64_t>();
  const std::string kind = j.value("kind", "");
  if (kind.empty()) return v;
  if (kind == "rewording") {
    v.kind = Variant::kRewording;
  } else if (kind == "hard_negative") {
    v.kind = Variant::kLookalike;
  } else {
    return absl::InvalidArgumentError("unknown \"kind\": " + kind);
  }
  if (!j.contains("variant_of") || !j["variant_of"].is_number_unsigned() ||
      j["variant_of"].get<uint64_t>() >= index) {
    return absl::InvalidArgumentError(
        "\"variant_of\" must be the index of an earlier request");
  }
  v.of = j["variant_of"].get<size_t>();
  return v;
}

absl::StatusOr<Workload> LoadWorkload(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot open workload " + path);
  Workload w;
  std::vector<Request>& requests = w.requests;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.empty()) continue;
    auto bad = [&](const std::string& why) {
      return absl::InvalidArgumentError(path + ":" + std::to_string(line_no) +
                                        ": " + why);
    };
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return bad("invalid JSON");
    try {
      absl::StatusOr<Request> r = RequestFromJson(j);
      if (!r.ok()) return bad(std::string(r.status().message()));
      absl::StatusOr<Variant> v = VariantFromJson(j, requests.size());
      if (!v.ok()) return bad(std::string(v.status().message()));
      requests.push_back(*std::move(r));
      w.variants.push_back(*v);
    } catch (const nlohmann::json::exception& e) {
      return bad(e.what());  // a field of the wrong type
    }
  }
  return w;
}

// ---------------------------------------------------------------------------
// Report

std::string Dollars(int64_t nusd) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "$%.4f", nusd * 1e-9);
  return buf;
}

std::string Duration(int64_t us) {
  const int64_t s = us / 1000000;
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm",
                  static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds",
                  static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%.1fs", us * 1e-6);
  }
  return buf;
}

double Percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / whole : 0.0;
}

// Unpriced rows show "unpriced", never $0, so that a model without a price
// does not look free. Rows mixing priced and unpriced calls (a price added
// mid-way) get a "*".
void PrintRow(const char* ns, const char* backend, const char* model,
              const promptcache::LedgerRow& row) {
  const bool all_unpriced =
      row.unpriced_events > 0 && row.spent_nusd == 0 && row.saved_nusd == 0;
  std::string spent = all_unpriced ? "unpriced" : Dollars(row.spent_nusd);
  // Net of what caching itself cost (paid embeddings).
  std::string saved =
      all_unpriced ? "unpriced" : Dollars(row.saved_nusd - row.embedding_nusd);
  if (!all_unpriced && row.unpriced_events > 0) saved += "*";
  std::printf(
      "%-17s %-11s %-22s %8lld %6lld %8lld %6lld %6.1f%% %10s %10s %10s\n", ns,
      backend, model, static_cast<long long>(row.requests),
      static_cast<long long>(row.exact_hits + row.coalesced),
      static_cast<long long>(row.semantic_hits),
      static_cast<long long>(row.misses), Percent(row.hits(), row.requests),
      spent.c_str(), saved.c_str(), Duration(row.upstream_us_saved).c_str());
}

void PrintReport(const promptcache::SavingsReport& report, bool earlier_runs) {
  std::printf("\nSavings by namespace / backend / model, prices of %s%s\n\n",
              report.prices_date.c_str(),
              earlier_runs ? " (all runs on this database)" : "");
  std::printf("%-17s %-11s %-22s %8s %6s %8s %6s %7s %10s %10s %10s\n",
              "namespace", "backend", "model", "requests", "exact", "semantic",
              "misses", "hit", "spent", "saved", "time saved");
  const std::string rule(125, '-');
  std::printf("%s\n", rule.c_str());
  for (const auto& row : report.rows) {
    PrintRow(row.ns.c_str(), row.backend.c_str(), row.model.c_str(), row);
  }
  std::printf("%s\n", rule.c_str());
  PrintRow("total", "", "", report.total);

  const auto& t = report.total;
  std::printf(
      "\n\"exact\" counts identical requests, including calls that waited for "
      "an identical one in\nflight; \"semantic\" counts the same question in "
      "other words. \"time saved\" is upstream\nlatency callers did not wait "
      "for; \"saved\" is net of paid embeddings.\n");
  if (t.unpriced_events > 0) {
    std::printf(
        "* the row includes %lld calls to unpriced models, which count in no "
        "dollar figure.\n",
        static_cast<long long>(t.unpriced_events));
  }
  if (t.estimated_events > 0) {
    std::printf("%lld costs were computed from estimated token counts.\n",
                static_cast<long long>(t.estimated_events));
  }
  if (t.requests > 0 && t.saved_nusd > 0) {
    std::printf(
        "Without the cache this traffic would have cost %s; with it, %s "
        "(%.1f%% less).\n",
        Dollars(t.spent_nusd + t.saved_nusd).c_str(),
        Dollars(t.spent_nusd).c_str(),
        Percent(t.saved_nusd, t.spent_nusd + t.saved_nusd));
  }
}

// ---------------------------------------------------------------------------
// Semantic tier: what the cache did with the rewordings and look-alikes

// What one call returned.
struct Outcome {
  bool answered = false;
  CacheStatus status = CacheStatus::kMiss;
  std::optional<promptcache::Key128> request_key;
  std::optional<promptcache::Key128> entry_key;
  double similarity = 0;
};

// The words of the last user turn, as the user typed them: the question of a
// RAG prompt, the words before a code block.
std::string_view Asked(const Request& request) {
  const promptcache::Message* last = promptcache::LastUserMessage(request);
  std::string_view q = last ? std::string_view(last->content) : "";
  constexpr std::string_view kQuestion = "\nQuestion: ";
  if (size_t p = q.rfind(kQuestion);
      q.starts_with("Context:") && p != std::string_view::npos) {
    q.remove_prefix(p + kQuestion.size());
  } else if (size_t fence = q.find("\n\n```");
             fence != std::string_view::npos) {
    q = q.substr(0, fence);
  }
  return q;
}

// `s` in quotes, shortened to about `width` characters (whole UTF-8 code
// points).
std::string Quoted(std::string_view s, size_t width = 72) {
  if (s.size() > width) {
    size_t cut = width - 3;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    return "\"" + std::string(s.substr(0, cut)) + "...\"";
  }
  return "\"" + std::string(s) + "\"";
}

struct SemanticCheck {
  int64_t semantic_hits = 0;
  int64_t rewordings = 0;
  int64_t rewordings_exact = 0;  // stored by an earlier run (--db reused)
  int64_t lookalikes = 0;
  int64_t other_semantic = 0;       // semantic hits of ordinary requests
  std::vector<size_t> caught;       // rewordings served by similarity
  std::vector<size_t> turned_away;  // look-alikes that got their own answer
  std::vector<size_t> false_hits;   // look-alikes served by similarity
  // Semantic hits that answered another question, look-alikes included.
  std::vector<size_t> wrong;
  // Per request: the request of this run whose stored answer it got (npos
  // when unknown).
  std::vector<size_t> answered_by;
};

SemanticCheck CheckSemantic(const Workload& w,
                            const std::vector<Outcome>& outcomes) {
  SemanticCheck c;
  absl::flat_hash_map<promptcache::Key128, size_t> first_with_key;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    if (outcomes[i].request_key) {
      first_with_key.emplace(*outcomes[i].request_key, i);
    }
  }
  c.answered_by.assign(outcomes.size(), std::string::npos);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& o = outcomes[i];
    if (!o.answered) continue;
    if (auto it =
            first_with_key.find(o.entry_key.value_or(promptcache::Key128()));
        o.entry_key && it != first_with_key.end()) {
      c.answered_by[i] = it->second;
    }
    const bool semantic = o.status == CacheStatus::kSemanticHit;
    if (semantic) {
      ++c.semantic_hits;
      const size_t by = c.answered_by[i];
      // Judged by the questions the workload names; an answer stored by an
      // earlier run under a key this run never sent cannot be judged.
      if (by != std::string::npos && w.variants[i].question >= 0 &&
          w.variants[by].question >= 0 &&
          w.variants[i].question != w.variants[by].question) {
        c.wrong.push_back(i);
      }
    }
    switch (w.variants[i].kind) {
      case Variant::kRewording:
        ++c.rewordings;
        if (semantic) {
          c.caught.push_back(i);
        } else if (o.status == CacheStatus::kExactHit ||
                   o.status == CacheStatus::kCoalesced) {
          ++c.rewordings_exact;
        }
        break;
      case Variant::kLookalike:
        ++c.lookalikes;
        (semantic ? c.false_hits : c.turned_away).push_back(i);
        break;
      case Variant::kNone:
        if (semantic) ++c.other_semantic;
        break;
    }
  }
  return c;
}

// Prints what the semantic tier did; returns false when a semantic hit
// answered another question.
bool PrintSemanticCheck(const Workload& w, const std::vector<Outcome>& outcomes,
                        const SemanticCheck& c,
                        const promptcache::Options& options) {
  if (options.embedder == nullptr) {
    std::printf(
        "\nSemantic tier off (--no-semantic): the %lld rewordings and %lld "
        "look-alikes in the\nworkload were answered by exact key or "
        "upstream.\n",
        static_cast<long long>(c.rewordings),
        static_cast<long long>(c.lookalikes));
    return true;
  }
  auto ll = [](auto v) { return static_cast<long long>(v); };
  std::printf(
      "\nSemantic tier: %s embedder; the conflict veto, then the calibrated "
      "match score\n(target false-hit rate %.1f%%)\n",
      options.embedder->name().c_str(),
      100 * options.semantic.target_false_hit_rate);
  std::printf("  semantic hits        %5lld\n", ll(c.semantic_hits));
  std::printf(
      "    rewordings caught  %5lld of %lld   (%.1f%% of the rewordings in the "
      "workload)\n",
      ll(c.caught.size()), ll(c.rewordings),
      Percent(static_cast<int64_t>(c.caught.size()), c.rewordings));
  std::printf(
      "    other              %5lld        (near-duplicates in the "
      "ordinary traffic)\n",
      ll(c.other_semantic));
  if (c.rewordings_exact > 0) {
    std::printf(
        "  rewordings answered by exact key (stored by an earlier run): "
        "%lld\n",
        ll(c.rewordings_exact));
  }
  std::printf(
      "  false hits           %5lld of %lld look-alikes   (another number, "
      "name or opposite verb)\n",
      ll(c.false_hits.size()), ll(c.lookalikes));
  std::printf(
      "  wrong answers        %5lld of %lld semantic hits   (the answer to "
      "another question)\n",
      ll(c.wrong.size()), ll(c.semantic_hits));

  auto asked_by = [&](size_t by) {
    return by == std::string::npos ? std::string("an earlier answer")
                                   : Quoted(Asked(w.requests[by]));
  };
  // Up to three, from different namespaces; with `prefer_reworded`, rather
  // one that is more than the same words in another case.
  auto examples = [&](const std::vector<size_t>& which, bool prefer_reworded) {
    std::vector<size_t> out;
    for (size_t i : which) {
      if (std::find(c.wrong.begin(), c.wrong.end(), i) != c.wrong.end()) {
        continue;
      }
      auto same_ns = std::find_if(out.begin(), out.end(), [&](size_t j) {
        return w.requests[j].ns == w.requests[i].ns;
      });
      if (same_ns == out.end()) {
        if (out.size() < 3) out.push_back(i);
      } else if (prefer_reworded && outcomes[*same_ns].similarity >= 0.98 &&
                 outcomes[i].similarity < 0.98) {
        *same_ns = i;
      }
    }
    return out;
  };
  if (!c.caught.empty()) {
    std::printf("\n  Rewordings served, for example:\n");
  }
  for (size_t i : examples(c.caught, true)) {
    std::printf("    %s\n      got the answer to %s (%.2f)\n",
                Quoted(Asked(w.requests[i])).c_str(),
                asked_by(c.answered_by[i]).c_str(), outcomes[i].similarity);
  }
  if (!c.turned_away.empty()) {
    std::printf("  Look-alikes that got their own answer, for example:\n");
  }
  for (size_t i : examples(c.turned_away, false)) {
    std::printf("    %s\n      is not %s\n",
                Quoted(Asked(w.requests[i])).c_str(),
                Quoted(Asked(w.requests[w.variants[i].of])).c_str());
  }
  if (c.wrong.empty() && c.false_hits.empty()) return true;

  std::printf("\n  WRONG ANSWERS served by similarity:\n");
  std::vector<size_t> bad = c.wrong;
  for (size_t i : c.false_hits) {
    if (std::find(bad.begin(), bad.end(), i) == bad.end()) bad.push_back(i);
  }
  std::sort(bad.begin(), bad.end());
  for (size_t i : bad) {
    std::printf(
        "    request %zu%s %s\n      got the answer to %s (%.3f)\n", i + 1,
        w.variants[i].kind == Variant::kLookalike ? " (look-alike)" : "",
        Quoted(Asked(w.requests[i]), 100).c_str(),
        asked_by(c.answered_by[i]).c_str(), outcomes[i].similarity);
  }
  return false;
}

// Tells the cache about the wrong answers it served, as an application does
// with user feedback: they count as false hits in its reports and the pair
// is not served again.
void ReportFalseHits(promptcache::Cache& cache, const SemanticCheck& c,
                     const std::vector<Outcome>& outcomes) {
  std::vector<size_t> bad = c.wrong;
  bad.insert(bad.end(), c.false_hits.begin(), c.false_hits.end());
  std::sort(bad.begin(), bad.end());
  bad.erase(std::unique(bad.begin(), bad.end()), bad.end());
  for (size_t i : bad) {
    const Outcome& o = outcomes[i];
    absl::Status s = o.request_key && o.entry_key
                         ? cache.ReportFalseHit(*o.request_key, *o.entry_key)
                         : absl::InternalError("a hit without its keys");
    if (!s.ok()) {
      std::cerr << "promptcache_demo: reporting the false hit of request "
                << i + 1 << ": " << s << "\n";
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Replays recorded LLM traffic through promptcache in front of a "
      "simulated upstream and prints what the cache saved."};
  std::string workload = PROMPTCACHE_DEMO_WORKLOAD;
  std::string db;
  int threads = 8;
  double latency_scale = 0.01;
  bool no_semantic = false;
  app.add_option("--workload", workload,
                 "Requests to replay, one JSON per line")
      ->capture_default_str();
  app.add_option("--db", db,
                 "Cache database directory (default: a fresh one under /tmp, "
                 "kept for inspection; reuse one to see a warm cache)");
  app.add_option("--threads", threads, "Concurrent callers")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--latency-scale", latency_scale,
                 "Simulated upstream sleeps latency times this (1 = real time)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  app.add_flag("--no-semantic", no_semantic,
               "Exact tier only: no embedder, no near-duplicate answers");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<Workload> loaded = LoadWorkload(workload);
  if (!loaded.ok()) {
    std::cerr << "promptcache_demo: " << loaded.status() << "\n";
    return 1;
  }
  const std::vector<Request>& requests = loaded->requests;

  if (db.empty()) {
    char tmpl[] = "/tmp/promptcache-demo-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::perror("promptcache_demo: mkdtemp");
      return 1;
    }
    db = tmpl;
  }

  promptcache::Options options;
  if (!no_semantic) {
    // Offline, no download: recognises rewordings that share words.
    options.embedder = std::make_shared<promptcache::BuiltinEmbedder>();
  }
  absl::StatusOr<std::unique_ptr<promptcache::Cache>> cache =
      promptcache::Cache::Open(db, options);
  if (!cache.ok()) {
    std::cerr << "promptcache_demo: cannot open " << db << ": "
              << cache.status() << "\n";
    return 1;
  }

  std::printf("promptcache demo\n");
  std::printf("  workload       %s (%zu requests)\n", workload.c_str(),
              requests.size());
  std::printf("  database       %s\n", db.c_str());
  std::printf("  threads        %d, upstream latency x %g\n", threads,
              latency_scale);
  std::printf("  semantic tier  %s\n\n",
              no_semantic ? "off (--no-semantic)"
                          : ("on, " + options.embedder->name()).c_str());

  // The ledger is cumulative; this run's share is the difference.
  absl::StatusOr<promptcache::SavingsReport> before = (*cache)->Report();
  if (!before.ok()) {
    std::cerr << "promptcache_demo: report: " << before.status() << "\n";
    return 1;
  }

  promptcache::CachedClient client(
      **cache, promptcache::demo::SimulatedUpstream{latency_scale});

  // Callers share one cursor over the workload, so identical requests that
  // are close together in it really are in flight at the same time.
  std::atomic<size_t> next{0};
  std::array<std::atomic<int64_t>, 6> by_status{};
  std::atomic<int64_t> errors{0};
  // What the responses themselves say, to check the ledger against.
  std::atomic<int64_t> saved_nusd{0}, spent_nusd{0}, unpriced{0};
  std::mutex error_mu;
  std::string first_error;
  // Each caller writes the outcomes of the requests it took.
  std::vector<Outcome> outcomes(requests.size());
  const absl::Time start = absl::Now();
  {
    std::vector<std::jthread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (size_t i; (i = next.fetch_add(1)) < requests.size();) {
          absl::StatusOr<Response> r = client.Complete(requests[i]);
          if (!r.ok()) {
            if (errors.fetch_add(1) == 0) {
              std::lock_guard<std::mutex> lock(error_mu);
              first_error = "request " + std::to_string(i + 1) + ": " +
                            r.status().ToString();
            }
            continue;
          }
          by_status[static_cast<size_t>(r->cache_status)].fetch_add(1);
          outcomes[i] = {.answered = true,
                         .status = r->cache_status,
                         .request_key = r->request_key,
                         .entry_key = r->entry_key,
                         .similarity = r->similarity};
          saved_nusd.fetch_add(std::llround(r->dollars_saved * 1e9));
          spent_nusd.fetch_add(std::llround(r->dollars_spent * 1e9));
          if (!r->priced) unpriced.fetch_add(1);
        }
      });
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);

  const int64_t n = static_cast<int64_t>(requests.size());
  auto count = [&](CacheStatus s) {
    return by_status[static_cast<size_t>(s)].load();
  };
  const int64_t hits = count(CacheStatus::kExactHit) +
                       count(CacheStatus::kSemanticHit) +
                       count(CacheStatus::kCoalesced);
  std::printf("Replayed %lld requests in %.2f s (%.0f requests/s)\n",
              static_cast<long long>(n), seconds, n / std::max(seconds, 1e-9));
  std::printf("  upstream calls  %8lld\n",
              static_cast<long long>(client.upstream_calls()));
  std::printf("  exact hits      %8lld\n",
              static_cast<long long>(count(CacheStatus::kExactHit)));
  std::printf("  semantic hits   %8lld   (the same question in other words)\n",
              static_cast<long long>(count(CacheStatus::kSemanticHit)));
  std::printf(
      "  coalesced       %8lld   (waited for an identical call in "
      "flight)\n",
      static_cast<long long>(count(CacheStatus::kCoalesced)));
  std::printf("  errors          %8lld\n",
              static_cast<long long>(errors.load()));
  std::printf("  hit rate        %7.1f%%\n", Percent(hits, n));
  if (errors.load() > 0) {
    std::printf("  first error: %s\n", first_error.c_str());
  }
  const SemanticCheck check = CheckSemantic(*loaded, outcomes);
  const bool semantic_ok =
      PrintSemanticCheck(*loaded, outcomes, check, options);
  if (!semantic_ok) ReportFalseHits(**cache, check, outcomes);

  // Hit statistics are written in the background; flush so that the report
  // includes every request of this run.
  if (absl::Status s = (*cache)->FlushStats(); !s.ok()) {
    std::cerr << "promptcache_demo: flushing stats: " << s << "\n";
    return 1;
  }
  absl::StatusOr<promptcache::SavingsReport> report = (*cache)->Report();
  if (!report.ok()) {
    std::cerr << "promptcache_demo: report: " << report.status() << "\n";
    return 1;
  }
  PrintReport(*report, before->total.requests > 0);

  // Every response of this run must be in the ledger, with the same money.
  const promptcache::LedgerRow& a = before->total;
  const promptcache::LedgerRow& b = report->total;
  const bool ledger_ok =
      b.requests - a.requests == n && b.hits() - a.hits() == hits &&
      b.misses - a.misses == client.upstream_calls() &&
      b.unpriced_events - a.unpriced_events == unpriced.load() &&
      // Responses carry doubles; allow a nano-dollar of rounding each.
      std::llabs((b.saved_nusd - a.saved_nusd) - saved_nusd.load()) <= n &&
      std::llabs((b.spent_nusd - a.spent_nusd) - spent_nusd.load()) <= n;
  if (!ledger_ok) {
    std::fprintf(stderr,
                 "\npromptcache_demo: the ledger disagrees with the "
                 "responses of this run:\n"
                 "  ledger:    %lld requests, %lld hits, %lld misses, %lld "
                 "unpriced, saved %s, spent %s\n"
                 "  responses: %lld requests, %lld hits, %lld upstream calls, "
                 "%lld unpriced, saved %s, spent %s\n",
                 static_cast<long long>(b.requests - a.requests),
                 static_cast<long long>(b.hits() - a.hits()),
                 static_cast<long long>(b.misses - a.misses),
                 static_cast<long long>(b.unpriced_events - a.unpriced_events),
                 Dollars(b.saved_nusd - a.saved_nusd).c_str(),
                 Dollars(b.spent_nusd - a.spent_nusd).c_str(),
                 static_cast<long long>(n), static_cast<long long>(hits),
                 static_cast<long long>(client.upstream_calls()),
                 static_cast<long long>(unpriced.load()),
                 Dollars(saved_nusd.load()).c_str(),
                 Dollars(spent_nusd.load()).c_str());
  }

  std::printf("\nDatabase: %s\nInspect it with:  promptcache report %s\n",
              db.c_str(), db.c_str());
  return errors.load() > 0 || !ledger_ok || !semantic_ok ? 1 : 0;
}
