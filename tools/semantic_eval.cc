// semantic_eval: measures the semantic tier's hit rate and false-hit rate on
// labeled data, for a sweep of thresholds, so that defaults are chosen from
// measurements. It uses the same embedder, guard and FAISS search as the
// cache.
//
//   semantic_eval --pairs-tsv dev.tsv            (id, a, b, label)
//   semantic_eval --pairs-jsonl f.jsonl          ({"a","b","label"} lines)
//   semantic_eval --gptcache mock_data.json      (origin/similar positives;
//                                                 negatives pair an origin
//                                                 with another's rewrite)
//   semantic_eval --banking77 DIR                (train.csv, test.csv)
//   semantic_eval --clinc150 data_full.json      (train/test + oos_test)
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "faiss/IndexFlat.h"
#include "nlohmann/json.hpp"
#include "promptcache/builtin_embedder.h"
#include "promptcache/model2vec_embedder.h"
#include "semantic/guard.h"

namespace {

using promptcache::Embedder;

struct Pair {
  std::string a, b;
  bool positive;
};

struct Query {
  std::string text, intent;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "semantic_eval: cannot read %s\n", path.c_str());
    std::exit(1);
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One CSV record with quotes ("a, b" and "" escapes).
std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back().push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back().push_back(c);
    }
  }
  return fields;
}

std::vector<Query> ReadIntentCsv(const std::string& path) {
  std::vector<Query> out;
  std::istringstream in(ReadFile(path));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> f = SplitCsvLine(line);
    if (f.size() >= 2) out.push_back({f[0], f[1]});
  }
  return out;
}

std::vector<float> EmbedAll(const Embedder& embedder,
                            const std::vector<std::string>& texts,
                            std::vector<bool>* ok) {
  const int d = embedder.dimension();
  std::vector<float> out(texts.size() * d, 0.0f);
  ok->assign(texts.size(), false);
  std::vector<float> one;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (embedder.Embed({texts[i]}, &one).ok()) {
      std::copy(one.begin(), one.end(), out.begin() + i * d);
      (*ok)[i] = true;
    }
  }
  return out;
}

std::vector<double> Thresholds(double from, double to, double step) {
  std::vector<double> out;
  for (double t = from; t <= to + 1e-9; t += step) out.push_back(t);
  return out;
}

void EvaluatePairs(const std::string& name, const std::vector<Pair>& pairs,
                   const Embedder& embedder, bool guard,
                   const promptcache::internal::GuardOptions& guard_options,
                   const std::vector<double>& thresholds, nlohmann::json* out) {
  std::vector<std::string> texts;
  for (const Pair& p : pairs) {
    texts.push_back(p.a);
    texts.push_back(p.b);
  }
  std::vector<bool> ok;
  const std::vector<float> v = EmbedAll(embedder, texts, &ok);
  const int d = embedder.dimension();
  std::vector<double> sim(pairs.size(), -1);
  std::vector<bool> pass(pairs.size(), false);
  int64_t positives = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    positives += pairs[i].positive;
    if (!ok[2 * i] || !ok[2 * i + 1]) continue;
    double dot = 0;
    for (int k = 0; k < d; ++k)
      dot += double{v[2 * i * d + k]} * v[(2 * i + 1) * d + k];
    sim[i] = dot;
    pass[i] = !guard || promptcache::internal::CheckAnswerTokens(
                            pairs[i].a, pairs[i].b, guard_options)
                            .pass;
  }
  const int64_t negatives = static_cast<int64_t>(pairs.size()) - positives;
  std::printf("\n%s: %zu pairs (%lld positive, %lld negative), guard %s\n",
              name.c_str(), pairs.size(), static_cast<long long>(positives),
              static_cast<long long>(negatives), guard ? "on" : "off");
  std::printf("%9s %12s %14s %10s\n", "threshold", "hit rate", "false hits",
              "precision");
  nlohmann::json rows = nlohmann::json::array();
  for (double t : thresholds) {
    int64_t tp = 0, fp = 0;
    for (size_t i = 0; i < pairs.size(); ++i) {
      if (sim[i] >= t && pass[i]) (pairs[i].positive ? tp : fp) += 1;
    }
    const double hit = positives ? 100.0 * tp / positives : 0;
    const double fh = negatives ? 100.0 * fp / negatives : 0;
    const double precision = tp + fp ? 100.0 * tp / (tp + fp) : 100.0;
    std::printf("%9.2f %11.1f%% %13.2f%% %9.1f%%\n", t, hit, fh, precision);
    rows.push_back({{"threshold", t},
                    {"hit_rate", hit},
                    {"false_hit_rate", fh},
                    {"precision", precision}});
  }
  (*out)[name] = rows;
}

void EvaluateIntents(const std::string& name, const std::vector<Query>& train,
                     const std::vector<Query>& test, const Embedder& embedder,
                     bool guard,
                     const promptcache::internal::GuardOptions& guard_options,
                     const std::vector<double>& thresholds,
                     nlohmann::json* out) {
  std::vector<std::string> train_text, test_text;
  for (const Query& q : train) train_text.push_back(q.text);
  for (const Query& q : test) test_text.push_back(q.text);
  std::vector<bool> train_ok, test_ok;
  const std::vector<float> tv = EmbedAll(embedder, train_text, &train_ok);
  const std::vector<float> qv = EmbedAll(embedder, test_text, &test_ok);
  const int d = embedder.dimension();
  faiss::IndexFlatIP index(d);
  index.add(static_cast<faiss::Index::idx_t>(train.size()), tv.data());
  constexpr int kTopK = 8;
  std::vector<float> sims(test.size() * kTopK);
  std::vector<faiss::Index::idx_t> labels(test.size() * kTopK);
  index.search(static_cast<faiss::Index::idx_t>(test.size()), qv.data(), kTopK,
               sims.data(), labels.data());
  // Per query: candidates in order with whether the guard lets them through.
  struct Candidate {
    double sim;
    bool pass;
    bool correct;
  };
  std::vector<std::vector<Candidate>> candidates(test.size());
  int64_t in_scope = 0;
  for (size_t i = 0; i < test.size(); ++i) {
    in_scope += test[i].intent != "oos";
    if (!test_ok[i]) continue;
    for (int k = 0; k < kTopK; ++k) {
      const auto j = labels[i * kTopK + k];
      if (j < 0 || !train_ok[j]) continue;
      const bool pass =
          !guard || promptcache::internal::CheckAnswerTokens(
                        test[i].text, train[j].text, guard_options)
                        .pass;
      candidates[i].push_back(
          {sims[i * kTopK + k], pass,
           train[j].intent == test[i].intent && test[i].intent != "oos"});
    }
  }
  const int64_t oos = static_cast<int64_t>(test.size()) - in_scope;
  std::printf(
      "\n%s: %zu stored, %zu queries (%lld out of scope), guard %s\n"
      "  a hit is correct when the served entry has the query's intent\n",
      name.c_str(), train.size(), test.size(), static_cast<long long>(oos),
      guard ? "on" : "off");
  std::printf("%9s %12s %14s %10s %14s\n", "threshold", "hit rate",
              "false hits", "precision", "oos false hits");
  nlohmann::json rows = nlohmann::json::array();
  for (double t : thresholds) {
    int64_t correct = 0, wrong = 0, oos_wrong = 0;
    for (size_t i = 0; i < test.size(); ++i) {
      for (const Candidate& c : candidates[i]) {
        if (c.sim < t) break;
        if (!c.pass) continue;
        if (c.correct) {
          ++correct;
        } else {
          ++wrong;
          oos_wrong += test[i].intent == "oos";
        }
        break;
      }
    }
    const double n = static_cast<double>(test.size());
    const double hit = 100.0 * (correct + wrong) / n;
    const double fh = 100.0 * wrong / n;
    const double precision =
        correct + wrong ? 100.0 * correct / (correct + wrong) : 100.0;
    const double oos_fh = oos ? 100.0 * oos_wrong / oos : 0;
    std::printf("%9.2f %11.1f%% %13.2f%% %9.1f%% %13.2f%%\n", t, hit, fh,
                precision, oos_fh);
    rows.push_back({{"threshold", t},
                    {"hit_rate", hit},
                    {"false_hit_rate", fh},
                    {"precision", precision},
                    {"oos_false_hit_rate", oos_fh}});
  }
  (*out)[name] = rows;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Measures semantic-tier hit and false-hit rates on labeled data"};
  std::string pairs_tsv, pairs_jsonl, gptcache, banking77, clinc150, json_out;
  std::string embedder_spec = "builtin";
  bool no_guard = false;
  double from = 0.5, to = 0.99, step = 0.02, unmatched = 0.25, swapped = 0;
  app.add_option("--pairs-tsv", pairs_tsv, "PAWS-style TSV: id, a, b, label");
  app.add_option("--pairs-jsonl", pairs_jsonl, "JSON lines {a, b, label}");
  app.add_option("--gptcache", gptcache, "GPTCache mock_data.json");
  app.add_option("--banking77", banking77,
                 "directory with train.csv, test.csv");
  app.add_option("--clinc150", clinc150, "CLINC150 data_full.json");
  app.add_option("--embedder", embedder_spec,
                 "builtin, builtin:DIM or model2vec:DIR");
  app.add_flag("--no-guard", no_guard, "measure similarity alone");
  app.add_option("--from", from, "lowest threshold");
  app.add_option("--to", to, "highest threshold");
  app.add_option("--step", step, "threshold step");
  app.add_option("--max-unmatched", unmatched,
                 "guard: fraction of content words that may lack a match");
  app.add_option("--max-swapped", swapped,
                 "guard: fraction of shared word pairs that may be swapped "
                 "(negative: no order check)");
  app.add_option("--json", json_out, "also write the tables as JSON here");
  CLI11_PARSE(app, argc, argv);

  std::unique_ptr<Embedder> embedder;
  if (embedder_spec.rfind("builtin", 0) == 0) {
    promptcache::BuiltinEmbedderOptions o;
    if (embedder_spec.size() > 8)
      o.dimension = std::stoi(embedder_spec.substr(8));
    embedder = std::make_unique<promptcache::BuiltinEmbedder>(o);
  } else if (embedder_spec.rfind("model2vec:", 0) == 0) {
    auto loaded =
        promptcache::Model2VecEmbedder::Load(embedder_spec.substr(10));
    if (!loaded.ok()) {
      std::fprintf(stderr, "semantic_eval: %s\n",
                   std::string(loaded.status().message()).c_str());
      return 1;
    }
    embedder = *std::move(loaded);
  } else {
    std::fprintf(stderr, "semantic_eval: unknown embedder '%s'\n",
                 embedder_spec.c_str());
    return 2;
  }
  std::printf("embedder %s\n", embedder->name().c_str());
  promptcache::internal::GuardOptions guard_options;
  guard_options.max_unmatched_fraction = unmatched;
  guard_options.max_swapped_fraction = swapped;
  const std::vector<double> thresholds = Thresholds(from, to, step);
  nlohmann::json results;
  results["embedder"] = embedder->name();

  if (!pairs_tsv.empty()) {
    std::vector<Pair> pairs;
    std::istringstream in(ReadFile(pairs_tsv));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::vector<std::string> f = absl::StrSplit(line, '\t');
      if (f.size() >= 4 && (f[3] == "0" || f[3] == "1")) {
        pairs.push_back({f[1], f[2], f[3] == "1"});
      }
    }
    EvaluatePairs("pairs:" + pairs_tsv, pairs, *embedder, !no_guard,
                  guard_options, thresholds, &results);
  }
  if (!pairs_jsonl.empty()) {
    std::vector<Pair> pairs;
    std::istringstream in(ReadFile(pairs_jsonl));
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("a") && j.contains("b")) {
        pairs.push_back({j["a"].get<std::string>(), j["b"].get<std::string>(),
                         j.value("label", 0) == 1});
      }
    }
    EvaluatePairs("pairs:" + pairs_jsonl, pairs, *embedder, !no_guard,
                  guard_options, thresholds, &results);
  }
  if (!gptcache.empty()) {
    nlohmann::json j =
        nlohmann::json::parse(ReadFile(gptcache), nullptr, false);
    std::vector<Pair> pairs;
    for (size_t i = 0; j.is_array() && i < j.size(); ++i) {
      pairs.push_back({j[i]["origin"], j[i]["similar"], true});
      // A negative: this origin against another item's rewrite.
      pairs.push_back(
          {j[i]["origin"], j[(i + 1) % j.size()]["similar"], false});
    }
    EvaluatePairs("gptcache_mock", pairs, *embedder, !no_guard, guard_options,
                  thresholds, &results);
  }
  if (!banking77.empty()) {
    EvaluateIntents("banking77", ReadIntentCsv(banking77 + "/train.csv"),
                    ReadIntentCsv(banking77 + "/test.csv"), *embedder,
                    !no_guard, guard_options, thresholds, &results);
  }
  if (!clinc150.empty()) {
    nlohmann::json j =
        nlohmann::json::parse(ReadFile(clinc150), nullptr, false);
    std::vector<Query> train, test;
    for (const auto& row : j["train"]) train.push_back({row[0], row[1]});
    for (const auto& row : j["test"]) test.push_back({row[0], row[1]});
    for (const auto& row : j["oos_test"]) test.push_back({row[0], "oos"});
    EvaluateIntents("clinc150", train, test, *embedder, !no_guard,
                    guard_options, thresholds, &results);
  }
  if (!json_out.empty()) std::ofstream(json_out) << results.dump(2) << "\n";
  return 0;
}
