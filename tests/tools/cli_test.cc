// End-to-end tests of the `promptcache` command-line tool: each test builds a
// database through the library, runs the real binary on it and checks its
// output, exit status and effect on the database.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "promptcache/builtin_embedder.h"
#include "promptcache/cache.h"
#include "promptcache/cache_tiers.h"
#include "promptcache/cached_client.h"
#include "promptcache/keys.h"
#include "promptcache/options.h"
#include "promptcache/price_book.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

#ifndef PROMPTCACHE_CLI_PATH
#error "PROMPTCACHE_CLI_PATH must name the built promptcache binary"
#endif

extern char** environ;

namespace promptcache {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;

struct RunResult {
  int exit_code = -1;     // valid when !signaled
  bool signaled = false;  // killed by a signal: a crash
  std::string out;
  std::string err;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// Runs the CLI with `args`, stdin from `stdin_path`. stdout/stderr go to
// files rather than pipes so that large output cannot deadlock the test.
RunResult RunCli(const fs::path& scratch, const std::vector<std::string>& args,
                 const std::string& stdin_path = "/dev/null") {
  const fs::path out_path = scratch / "cli.stdout";
  const fs::path err_path = scratch / "cli.stderr";
  std::vector<std::string> storage = {PROMPTCACHE_CLI_PATH};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY,
                                   0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int rc =
      posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  RunResult result;
  if (rc != 0) {
    ADD_FAILURE() << "cannot run " << argv[0] << ": " << rc;
    return result;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  if (WIFSIGNALED(status)) {
    result.signaled = true;
  } else {
    result.exit_code = WEXITSTATUS(status);
  }
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

std::string Describe(const RunResult& r) {
  return "exit=" + std::to_string(r.exit_code) +
         (r.signaled ? " (signaled)" : "") + "\nstdout:\n" + r.out +
         "\nstderr:\n" + r.err;
}

json ParseJson(const RunResult& r) {
  json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << Describe(r);
  return j;
}

struct Seed {
  std::string ns;
  std::string backend;
  std::string model;
  std::vector<std::pair<std::string, std::string>> messages;  // role, text
  std::string answer;
  bool estimated;
  int hits;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (fs::temp_directory_path() / "promptcache_cli_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    db_ = (dir_ / "db").string();
    CreateDb();
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static Options TestOptions() {
    Options options;
    // Known prices for the priced models; "testbackend" has none at all, so
    // its rows must come out unpriced.
    options.prices = PriceBook::Default();
    EXPECT_TRUE(options.prices
                    .Set(ModelPrice{"openai",
                                    "gpt-4o-mini",
                                    TokenPrices{0.15, 0.075, std::nullopt, 0.6},
                                    {}})
                    .ok());
    EXPECT_TRUE(options.prices
                    .Set(ModelPrice{"anthropic",
                                    "claude-test",
                                    TokenPrices{3.0, 0.3, 3.75, 15.0},
                                    {}})
                    .ok());
    options.stats_flush_interval = absl::Hours(1);  // flushed explicitly
    return options;
  }

  void CreateDb() {
    const std::vector<Seed> seeds = {
        {"acme",
         "openai",
         "gpt-4o-mini",
         {{"system", "You are terse."},
          {"user", "What is the capital of France?"}},
         "Paris.",
         false,
         2},
        // The earlier user turn mentions zebras; prompt search must only
        // look at the last one.
        {"acme",
         "anthropic",
         "claude-test",
         {{"user", "Tell me about zebras"},
          {"assistant", "Zebras are striped."},
          {"user", "Summarize the report in one line"}},
         "The report says revenue grew.",
         true,
         1},
        {"beta",
         "openai",
         "gpt-4o-mini",
         {{"user", "Translate hello to German"}},
         "Hallo",
         false,
         1},
        {"beta",
         "testbackend",
         "unpriced-model",
         {{"user", "Tell me a joke"}},
         "Why did the chicken cross the road?",
         false,
         1},
    };
    auto cache = Cache::Open(db_, TestOptions());
    ASSERT_TRUE(cache.ok()) << cache.status();
    for (const Seed& s : seeds) {
      Request request;
      request.ns = s.ns;
      request.backend = s.backend;
      request.model = s.model;
      for (const auto& [role, content] : s.messages) {
        Message m;
        m.role = role;
        m.content = content;
        request.messages.push_back(std::move(m));
      }
      request.params.temperature = 0;
      auto canonical = Canonicalize(request);
      ASSERT_TRUE(canonical.ok()) << canonical.status();
      Response answer;
      answer.text = s.answer;
      answer.finish_reason = "stop";
      answer.usage.input_tokens = 1000;
      answer.usage.output_tokens = 200;
      answer.usage.estimated = s.estimated;
      answer.upstream_latency = absl::Milliseconds(800);
      ASSERT_TRUE(CacheTiers(**cache)
                      .StoreMiss(request, *canonical, std::nullopt, &answer)
                      .ok());
      for (int i = 0; i < s.hits; ++i) {
        Response hit = answer;
        CacheTiers(**cache).RecordHit(request, canonical->keys.exact,
                                      CacheStatus::kExactHit, &hit);
      }
      keys_[s.ns + "/" + s.backend] = canonical->keys.exact.ToHex();
    }
    ASSERT_TRUE((*cache)->FlushStats().ok());
  }

  // Keys and namespaces of a database, read through the library.
  static std::map<std::string, std::string> EntriesOf(const std::string& db) {
    std::map<std::string, std::string> entries;
    Options options;
    options.read_only = true;
    options.create_if_missing = false;
    auto cache = Cache::Open(db, options);
    EXPECT_TRUE(cache.ok()) << cache.status();
    if (!cache.ok()) return entries;
    EXPECT_TRUE((*cache)
                    ->ForEachEntry([&](const EntryInfo& e) {
                      entries[e.key.ToHex()] = e.ns;
                      return true;
                    })
                    .ok());
    return entries;
  }

  RunResult Run(const std::vector<std::string>& args,
                const std::string& stdin_path = "/dev/null") {
    return RunCli(dir_, args, stdin_path);
  }

  // One user message to acme/openai/gpt-4o-mini, with default parameters.
  static Request AcmeRequest(const std::string& text) {
    Request request;
    request.ns = "acme";
    request.backend = "openai";
    request.model = "gpt-4o-mini";
    Message m;
    m.role = "user";
    m.content = text;
    request.messages.push_back(std::move(m));
    return request;
  }

  static Request UserRequest(const std::string& text) {
    Request request = AcmeRequest(text);
    request.params.temperature = 0;
    return request;
  }

  static absl::StatusOr<Response> FakeUpstream(const Request& request) {
    Response r;
    r.text = "Answer to: " + request.messages.back().content;
    r.finish_reason = "stop";
    r.usage.input_tokens = 500;
    r.usage.output_tokens = 100;
    r.upstream_latency = absl::Milliseconds(300);
    return r;
  }

  static Options SemanticOptions(int dimension = 128) {
    Options options = TestOptions();
    BuiltinEmbedderOptions embedder;
    embedder.dimension = dimension;
    options.embedder = std::make_shared<BuiltinEmbedder>(embedder);
    return options;
  }

  // A database with a semantic tier (built-in embedder, dimension 128): one
  // stored question, and one paraphrase of it served as a semantic hit.
  void CreateSemanticDb() {
    sem_db_ = (dir_ / "semantic-db").string();
    auto cache = Cache::Open(sem_db_, SemanticOptions());
    ASSERT_TRUE(cache.ok()) << cache.status();
    CachedClient client(**cache, FakeUpstream);
    absl::StatusOr<Response> stored =
        client.Complete(UserRequest("Explain recursion"));
    ASSERT_TRUE(stored.ok()) << stored.status();
    ASSERT_EQ(stored->cache_status, CacheStatus::kMiss);
    ASSERT_TRUE(stored->stored);
    absl::StatusOr<Response> hit = client.Complete(UserRequest(kParaphrase));
    ASSERT_TRUE(hit.ok()) << hit.status();
    ASSERT_EQ(hit->cache_status, CacheStatus::kSemanticHit)
        << "similarity " << hit->similarity;
    ASSERT_EQ(hit->entry_key, stored->entry_key);
    entry_key_ = hit->entry_key->ToHex();
    request_key_ = hit->request_key->ToHex();
    similarity_ = hit->similarity;
    ASSERT_TRUE((*cache)->FlushStats().ok());
  }

  static constexpr char kParaphrase[] = "What is recursion?";

  fs::path dir_;
  std::string db_;
  std::map<std::string, std::string> keys_;  // "ns/backend" -> hex key
  // The semantic database (CreateSemanticDb).
  std::string sem_db_;
  std::string entry_key_;    // the stored entry
  std::string request_key_;  // the paraphrase it served
  double similarity_ = 0;
};

TEST_F(CliTest, ReportJsonRowsAddUpToTotal) {
  RunResult r = Run({"report", db_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json report = ParseJson(r);
  ASSERT_TRUE(report.contains("prices_date"));
  ASSERT_TRUE(report["rows"].is_array());
  ASSERT_EQ(report["rows"].size(), 4u) << r.out;

  int64_t requests = 0, exact = 0, misses = 0, spent = 0, saved = 0, net = 0;
  double spent_usd = 0, saved_usd = 0;
  std::set<std::string> backends;
  for (const json& row : report["rows"]) {
    backends.insert(row["backend"].get<std::string>());
    requests += row["requests"].get<int64_t>();
    exact += row["exact_hits"].get<int64_t>();
    misses += row["misses"].get<int64_t>();
    spent += row["spent_nusd"].get<int64_t>();
    saved += row["saved_nusd"].get<int64_t>();
    net += row["net_saved_nusd"].get<int64_t>();
    spent_usd += row["spent_usd"].get<double>();
    saved_usd += row["saved_usd"].get<double>();
    const bool unpriced = row["backend"] == "testbackend";
    EXPECT_EQ(row["pricing"], unpriced ? "unpriced" : "priced") << row;
    if (!unpriced) {
      EXPECT_GT(row["spent_nusd"].get<int64_t>(), 0) << row;
      EXPECT_GT(row["saved_nusd"].get<int64_t>(), 0) << row;
    }
    EXPECT_EQ(row["estimated"].get<bool>(), row["backend"] == "anthropic")
        << row;
  }
  EXPECT_EQ(backends,
            (std::set<std::string>{"anthropic", "openai", "testbackend"}));
  const json& total = report["total"];
  EXPECT_EQ(total["requests"].get<int64_t>(), requests);
  EXPECT_EQ(total["exact_hits"].get<int64_t>(), exact);
  EXPECT_EQ(exact, 5);
  EXPECT_EQ(misses, 4);
  EXPECT_EQ(total["misses"].get<int64_t>(), misses);
  EXPECT_EQ(total["spent_nusd"].get<int64_t>(), spent);
  EXPECT_EQ(total["saved_nusd"].get<int64_t>(), saved);
  EXPECT_EQ(total["net_saved_nusd"].get<int64_t>(), net);
  EXPECT_NEAR(total["spent_usd"].get<double>(), spent_usd, 1e-9);
  EXPECT_NEAR(total["saved_usd"].get<double>(), saved_usd, 1e-9);
  EXPECT_EQ(total["pricing"], "partly_unpriced");
}

TEST_F(CliTest, ReportNamespaceFilterRecomputesTotal) {
  RunResult r = Run({"report", db_, "--json", "--ns", "acme"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json report = ParseJson(r);
  ASSERT_EQ(report["rows"].size(), 2u) << r.out;
  int64_t saved = 0;
  for (const json& row : report["rows"]) {
    EXPECT_EQ(row["ns"], "acme");
    saved += row["saved_nusd"].get<int64_t>();
  }
  EXPECT_EQ(report["total"]["saved_nusd"].get<int64_t>(), saved);
  EXPECT_EQ(report["total"]["exact_hits"].get<int64_t>(), 3);
}

TEST_F(CliTest, ReportTextTable) {
  RunResult r = Run({"report", db_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("NAMESPACE"));
  EXPECT_THAT(r.out, HasSubstr("gpt-4o-mini"));
  EXPECT_THAT(r.out, HasSubstr("TOTAL"));
  EXPECT_THAT(r.out, HasSubstr("unpriced"));
  EXPECT_THAT(r.out, HasSubstr("partly unpriced"));  // the TOTAL line
  EXPECT_THAT(r.out, HasSubstr("~"));                // estimated usage
  EXPECT_THAT(r.out, HasSubstr("Prices as of"));
}

TEST_F(CliTest, StatsCountsEntries) {
  RunResult r = Run({"stats", db_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json stats = ParseJson(r);
  EXPECT_EQ(stats["entries"].get<int64_t>(), 4);
  EXPECT_EQ(stats["hits_recorded"].get<int64_t>(), 5);
  EXPECT_EQ(stats["schema_version"].get<int>(), kSchemaVersion);

  r = Run({"stats", db_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("entries:"));
}

TEST_F(CliTest, InspectByKey) {
  const std::string key = keys_["acme/openai"];
  RunResult r = Run({"inspect", db_, "--key", key});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr(key));
  EXPECT_THAT(r.out, HasSubstr("gpt-4o-mini"));
  EXPECT_THAT(r.out, HasSubstr("What is the capital of France?"));
  EXPECT_THAT(r.out, HasSubstr("You are terse."));
  EXPECT_THAT(r.out, HasSubstr("Paris."));

  r = Run({"inspect", db_, "--key", key, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json entry = ParseJson(r);
  EXPECT_EQ(entry["key"], key);
  EXPECT_EQ(entry["ns"], "acme");
  EXPECT_EQ(entry["hit_count"].get<int64_t>(), 2);
  ASSERT_EQ(entry["answers"].size(), 1u);
  EXPECT_EQ(entry["answers"][0]["text"], "Paris.");
}

TEST_F(CliTest, InspectByKeyRespectsNamespaceAndReportsMissing) {
  const std::string key = keys_["acme/openai"];
  RunResult r = Run({"inspect", db_, "--key", key, "--ns", "beta"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("no entry"));

  r = Run({"inspect", db_, "--key", std::string(32, '0')});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("no entry"));

  r = Run({"inspect", db_, "--key", "not-hex"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);

  r = Run({"inspect", db_});  // neither --key nor --prompt
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
}

TEST_F(CliTest, InspectByPrompt) {
  RunResult r =
      Run({"inspect", db_, "--prompt", "CAPITAL of france", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json found = ParseJson(r);
  ASSERT_EQ(found["matches"].get<int64_t>(), 1) << r.out;
  EXPECT_EQ(found["entries"][0]["key"], keys_["acme/openai"]);

  r = Run({"inspect", db_, "--prompt", "capital of france"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Paris."));

  // Only the last user message is searched.
  r = Run({"inspect", db_, "--prompt", "zebras", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ParseJson(r)["matches"].get<int64_t>(), 0) << r.out;

  // Namespace filter.
  r = Run({"inspect", db_, "--prompt", "capital", "--ns", "beta", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ParseJson(r)["matches"].get<int64_t>(), 0) << r.out;

  // --limit caps the entries shown but not the match count.
  r = Run({"inspect", db_, "--prompt", "e", "--limit", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json limited = ParseJson(r);
  EXPECT_EQ(limited["matches"].get<int64_t>(), 4) << r.out;
  EXPECT_EQ(limited["entries"].size(), 1u);
}

TEST_F(CliTest, PurgeNamespaceDeletesOnlyThatNamespace) {
  RunResult r = Run({"purge", db_, "--ns", "acme"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Deleted 2 entries"));
  const auto entries = EntriesOf(db_);
  EXPECT_EQ(entries.size(), 2u);
  for (const auto& [key, ns] : entries) EXPECT_EQ(ns, "beta") << key;
}

TEST_F(CliTest, PurgeAllRequiresYes) {
  RunResult r = Run({"purge", db_, "--all"});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_FALSE(r.signaled);
  EXPECT_THAT(r.err, HasSubstr("--yes"));
  EXPECT_EQ(EntriesOf(db_).size(), 4u);

  r = Run({"purge", db_, "--all", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Deleted 4 entries"));
  EXPECT_TRUE(EntriesOf(db_).empty());
}

TEST_F(CliTest, PurgeOlderThan) {
  for (const std::string bad : {"10x", "abc", "30", "d", "-5d", "0d", ""}) {
    // "--opt=value" so that "-5d" and "" reach our parser as values.
    RunResult r = Run({"purge", db_, "--older-than=" + bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << Describe(r);
    // CLI11 itself rejects an empty value ("required TEXT missing").
    if (!bad.empty()) {
      EXPECT_THAT(r.err, HasSubstr("duration")) << bad;
    }
  }
  EXPECT_EQ(EntriesOf(db_).size(), 4u);

  // Everything was created just now: nothing is 30 days old.
  RunResult r = Run({"purge", db_, "--older-than", "30d"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Deleted 0 entries"));
  EXPECT_EQ(EntriesOf(db_).size(), 4u);

  r = Run({"purge", db_});  // no condition
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
}

TEST_F(CliTest, PurgeExpiredAndOld) {
  // Two entries written "40 days ago": one that expired an hour after, one
  // that never expires.
  std::string expired_key;
  {
    Options options = TestOptions();
    const absl::Time past = absl::Now() - absl::Hours(24 * 40);
    options.clock = [past] { return past; };
    auto cache = Cache::Open(db_, options);
    ASSERT_TRUE(cache.ok()) << cache.status();
    for (const auto& [text, ttl] :
         {std::pair<std::string, absl::Duration>{"old and expired",
                                                 absl::Hours(1)},
          {"old but kept", absl::InfiniteDuration()}}) {
      Request request = AcmeRequest(text);
      auto canonical = Canonicalize(request);
      ASSERT_TRUE(canonical.ok()) << canonical.status();
      Response answer;
      answer.text = "ok";
      answer.finish_reason = "stop";
      ASSERT_TRUE(CacheTiers(**cache)
                      .StoreMiss(request, *canonical, ttl, &answer)
                      .ok());
      if (text == "old and expired") {
        expired_key = canonical->keys.exact.ToHex();
      }
    }
  }
  RunResult r = Run({"stats", db_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ParseJson(r)["expired_entries"].get<int64_t>(), 1) << r.out;

  r = Run({"inspect", db_, "--key", expired_key});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("expired"));

  r = Run({"purge", db_, "--expired"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Deleted 1 entry"));
  EXPECT_EQ(EntriesOf(db_).count(expired_key), 0u);
  EXPECT_EQ(EntriesOf(db_).size(), 5u);

  // Conditions combine: nothing in "beta" is 30 days old.
  r = Run({"purge", db_, "--older-than", "30d", "--ns", "beta"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Deleted 0 entries"));

  r = Run({"purge", db_, "--older-than", "30d"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Deleted 1 entry"));
  EXPECT_EQ(EntriesOf(db_).size(), 4u);
}

TEST_F(CliTest, ExportImportRoundTrip) {
  const std::string file = (dir_ / "export.jsonl").string();
  RunResult r = Run({"export", db_, "--out", file});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("exported 4 entries"));

  const std::string db2 = (dir_ / "db2").string();
  r = Run({"import", db2, "--in", file});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("imported 4 entries"));

  const auto original = EntriesOf(db_);
  EXPECT_EQ(original.size(), 4u);
  EXPECT_EQ(EntriesOf(db2), original);

  // Through stdout and stdin as well.
  r = Run({"export", db_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const fs::path piped = dir_ / "piped.jsonl";
  WriteFile(piped, r.out);
  EXPECT_EQ(r.out, ReadFile(file));
  const std::string db3 = (dir_ / "db3").string();
  r = Run({"import", db3, "--in", "-"}, piped.string());
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(EntriesOf(db3), original);
}

TEST_F(CliTest, ImportRejectsBadInput) {
  const fs::path bad = dir_ / "bad.jsonl";
  WriteFile(bad, "this is not json\n");
  RunResult r = Run({"import", (dir_ / "db4").string(), "--in", bad.string()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("import failed"));

  r = Run({"import", (dir_ / "db5").string(), "--in",
           (dir_ / "no-such-file").string()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_FALSE(fs::exists(dir_ / "db5"));  // no empty DB left behind
}

// ---------------------------------------------------------------------------
// Semantic tier: --embedder, inspect's semantic hits, feedback, reembed,
// stats and the false-hit rate in report.
// ---------------------------------------------------------------------------

TEST_F(CliTest, ExplainShowsTheDecisionPerCandidate) {
  CreateSemanticDb();
  const std::vector<std::string> scope = {"--model",    "gpt-4o-mini",   "--ns",
                                          "acme",       "--temperature", "0",
                                          "--embedder", "builtin"};
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.end(), scope.begin(), scope.end());
    return Run(args);
  };
  RunResult r = run({"explain", sem_db_, kParaphrase});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("rule: calibrated (builtin-hash-v1/128"));
  EXPECT_THAT(r.out, HasSubstr("SERVED   " + entry_key_));
  EXPECT_THAT(r.out, HasSubstr("prompt:   Explain recursion"));
  EXPECT_THAT(r.out, HasSubstr(">= cut"));

  r = run({"explain", sem_db_, kParaphrase, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json j = ParseJson(r);
  ASSERT_EQ(j["candidates"].size(), 1u) << r.out;
  const json& c = j["candidates"][0];
  EXPECT_EQ(c["entry"], entry_key_);
  EXPECT_TRUE(c["served"].get<bool>());
  EXPECT_GE(c["score"].get<double>(), c["cut"].get<double>());
  EXPECT_TRUE(c["features"].contains("cover_min"));
  EXPECT_EQ(c["veto"], "");

  // A look-alike: the veto that refused it is named.
  r = run({"explain", sem_db_, "Explain recursion in C++", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  j = ParseJson(r);
  ASSERT_EQ(j["candidates"].size(), 1u) << r.out;
  EXPECT_FALSE(j["candidates"][0]["served"].get<bool>());
  EXPECT_THAT(j["candidates"][0]["veto"].get<std::string>(),
              HasSubstr("differ"));
  // The similarity override.
  r = run({"explain", sem_db_, kParaphrase, "--threshold", "0.99"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("threshold override"));
  EXPECT_THAT(r.out, HasSubstr("refused  " + entry_key_));

  // Usage errors: no model, no embedder, a threshold out of range.
  EXPECT_EQ(Run({"explain", sem_db_, "x", "--embedder", "builtin"}).exit_code,
            2);
  EXPECT_EQ(Run({"explain", sem_db_, "x", "--model", "m"}).exit_code, 2);
  EXPECT_EQ(run({"explain", sem_db_, "x", "--threshold", "7"}).exit_code, 2);
}

TEST_F(CliTest, InspectJsonShowsAnAnswerWithInvalidUtf8) {
  // An upstream's bytes are stored as they came; --json once failed on
  // them (issue 14).
  const std::string db = (dir_ / "utf8-db").string();
  {
    auto cache = Cache::Open(db, TestOptions());
    ASSERT_TRUE(cache.ok()) << cache.status();
    CachedClient client(**cache, [](const Request&) {
      Response r;
      r.text = "broken \xC3\x28 bytes";
      r.finish_reason = "stop";
      r.usage.input_tokens = 10;
      r.usage.output_tokens = 10;
      return absl::StatusOr<Response>(r);
    });
    ASSERT_TRUE(client.Complete(UserRequest("give me bytes")).ok());
  }
  RunResult r = Run({"inspect", db, "--prompt", "bytes", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json j = ParseJson(r);
  ASSERT_EQ(j["entries"].size(), 1u) << r.out;
}

TEST_F(CliTest, InspectShowsSemanticHits) {
  ASSERT_NO_FATAL_FAILURE(CreateSemanticDb());
  // No embedder needed to see the hits.
  RunResult r = Run({"inspect", sem_db_, "--key", entry_key_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("semantic hits served (1)"));
  EXPECT_THAT(r.out, HasSubstr("request " + request_key_));
  char similarity[32];
  std::snprintf(similarity, sizeof similarity, "similarity %.4f", similarity_);
  EXPECT_THAT(r.out, HasSubstr(similarity));
  EXPECT_THAT(r.out, HasSubstr("served 1 time"));
  EXPECT_THAT(r.out, HasSubstr(kParaphrase));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("REPORTED WRONG")));

  r = Run({"inspect", sem_db_, "--key", entry_key_, "--json", "--embedder",
           "builtin"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json entry = ParseJson(r);
  ASSERT_EQ(entry["semantic_hits"].size(), 1u) << r.out;
  const json& hit = entry["semantic_hits"][0];
  EXPECT_EQ(hit["request_key"], request_key_);
  EXPECT_NEAR(hit["similarity"].get<double>(), similarity_, 1e-6);
  EXPECT_LT(hit["similarity"].get<double>(), 1.0);
  EXPECT_EQ(hit["count"].get<int64_t>(), 1);
  EXPECT_FALSE(hit["last_served"].is_null());
  EXPECT_EQ(hit["reported_wrong"], false);
  EXPECT_EQ(hit["query"], kParaphrase);

  // --prompt lists them too; an entry without hits has an empty list.
  r = Run({"inspect", sem_db_, "--prompt", "recursion", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json found = ParseJson(r);
  ASSERT_EQ(found["entries"].size(), 1u) << r.out;
  EXPECT_EQ(found["entries"][0]["semantic_hits"].size(), 1u);
  r = Run({"inspect", db_, "--key", keys_["acme/openai"], "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(ParseJson(r)["semantic_hits"].empty()) << r.out;
  r = Run({"inspect", db_, "--key", keys_["acme/openai"]});
  EXPECT_THAT(r.out, HasSubstr("semantic hits served: none"));
}

TEST_F(CliTest, FeedbackCountsFalseHitAndStopsServing) {
  ASSERT_NO_FATAL_FAILURE(CreateSemanticDb());
  RunResult r = Run({"report", sem_db_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json report = ParseJson(r);
  EXPECT_EQ(report["total"]["semantic_hits"].get<int64_t>(), 1) << r.out;
  EXPECT_EQ(report["total"]["false_hits"].get<int64_t>(), 0);
  EXPECT_EQ(report["total"]["false_hit_rate"].get<double>(), 0.0);
  // No semantic hits: no rate.
  r = Run({"report", db_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(ParseJson(r)["total"]["false_hit_rate"].is_null()) << r.out;

  r = Run(
      {"feedback", sem_db_, "--request", request_key_, "--entry", entry_key_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Reported a false hit"));
  EXPECT_THAT(r.out, HasSubstr(entry_key_));
  EXPECT_THAT(r.out, HasSubstr(request_key_));
  EXPECT_THAT(r.out, HasSubstr(kParaphrase));

  r = Run({"report", sem_db_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  report = ParseJson(r);
  EXPECT_EQ(report["total"]["false_hits"].get<int64_t>(), 1) << r.out;
  EXPECT_DOUBLE_EQ(report["total"]["false_hit_rate"].get<double>(), 1.0);
  ASSERT_EQ(report["rows"].size(), 1u);
  EXPECT_EQ(report["rows"][0]["false_hits"].get<int64_t>(), 1);

  r = Run({"report", sem_db_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("FALSE HITS"));
  EXPECT_THAT(r.out, HasSubstr("1 (100.0%)"));

  r = Run({"inspect", sem_db_, "--key", entry_key_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ParseJson(r)["semantic_hits"][0]["reported_wrong"], true);
  r = Run({"inspect", sem_db_, "--key", entry_key_});
  EXPECT_THAT(r.out, HasSubstr("REPORTED WRONG"));

  // Reporting again changes nothing and counts nothing.
  r = Run({"feedback", sem_db_, "--request", request_key_, "--entry",
           entry_key_, "--embedder", "builtin"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("Already reported"));
  r = Run({"report", sem_db_, "--json"});
  EXPECT_EQ(ParseJson(r)["total"]["false_hits"].get<int64_t>(), 1) << r.out;

  // The library no longer serves that pairing.
  auto cache = Cache::Open(sem_db_, SemanticOptions());
  ASSERT_TRUE(cache.ok()) << cache.status();
  CachedClient client(**cache, FakeUpstream);
  absl::StatusOr<Response> again = client.Complete(UserRequest(kParaphrase));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->cache_status, CacheStatus::kSemanticHit);
}

TEST_F(CliTest, FeedbackRejectsUnknownPairsAndBadKeys) {
  ASSERT_NO_FATAL_FAILURE(CreateSemanticDb());
  // A pair that was never served: the keys swapped, and made-up keys.
  for (const auto& [request, entry] :
       {std::pair<std::string, std::string>{entry_key_, request_key_},
        {std::string(32, 'a'), entry_key_},
        {request_key_, std::string(32, 'b')}}) {
    RunResult r =
        Run({"feedback", sem_db_, "--request", request, "--entry", entry});
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("no semantic hit to report"));
    EXPECT_THAT(r.err, HasSubstr(entry));
  }
  RunResult r = Run({"report", sem_db_, "--json"});
  EXPECT_EQ(ParseJson(r)["total"]["false_hits"].get<int64_t>(), 0) << r.out;

  r = Run({"feedback", sem_db_, "--request", "xyz", "--entry", entry_key_});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("--request"));
  r = Run({"feedback", sem_db_, "--request", request_key_, "--entry", "12"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("--entry"));
  r = Run({"feedback", sem_db_, "--request", request_key_});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);

  // The exact-only database has no semantic hits at all.
  r = Run({"feedback", db_, "--request", request_key_, "--entry",
           keys_["acme/openai"]});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("no semantic hit to report"));
}

TEST_F(CliTest, ReembedSwitchesEmbedder) {
  ASSERT_NO_FATAL_FAILURE(CreateSemanticDb());
  // The cache holds builtin/128 vectors: another embedder is refused.
  RunResult r = Run({"stats", sem_db_, "--embedder", "builtin:256"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("reembed"));

  r = Run({"stats", sem_db_, "--embedder", "builtin", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json stats = ParseJson(r);
  EXPECT_EQ(stats["semantic"]["embedder"], "builtin-hash-v1/128") << r.out;
  EXPECT_EQ(stats["semantic"]["vectors"].get<int64_t>(), 1);

  r = Run({"reembed", sem_db_, "--embedder", "builtin:256"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("embedder: builtin-hash-v1/256"));
  EXPECT_THAT(r.out, HasSubstr("vectors:  1"));

  {
    auto cache = Cache::Open(sem_db_, SemanticOptions(256));
    ASSERT_TRUE(cache.ok()) << cache.status();
    EXPECT_EQ((*cache)->GetSemanticStats().vectors, 1);
  }
  {
    auto cache = Cache::Open(sem_db_, SemanticOptions(128));
    EXPECT_TRUE(absl::IsFailedPrecondition(cache.status())) << cache.status();
  }

  r = Run({"stats", sem_db_, "--embedder", "builtin:256", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  stats = ParseJson(r);
  EXPECT_EQ(stats["semantic"]["embedder"], "builtin-hash-v1/256") << r.out;
  EXPECT_EQ(stats["semantic"]["vectors"].get<int64_t>(), 1);
  EXPECT_EQ(stats["semantic"]["scopes"].get<int64_t>(), 1);
  EXPECT_GT(stats["semantic"]["index_memory_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(stats["entries"].get<int64_t>(), 1);

  r = Run({"stats", sem_db_, "--embedder", "builtin:256"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("builtin-hash-v1/256"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("vectors: +1\n"));

  // Without --embedder: no semantic section, and no error.
  r = Run({"stats", sem_db_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(ParseJson(r)["semantic"].is_null()) << r.out;
  r = Run({"stats", sem_db_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("not loaded"));

  // The hit history survives the re-embedding.
  r = Run({"inspect", sem_db_, "--key", entry_key_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ParseJson(r)["semantic_hits"].size(), 1u) << r.out;
}

TEST_F(CliTest, EmbedderSpecErrors) {
  ASSERT_NO_FATAL_FAILURE(CreateSemanticDb());
  for (const std::string bad :
       {"builtin:100", "builtin:32", "builtin:8192", "builtin:", "builtin:x",
        "nope", "model2vec", "model2vec:", "http:", "http:localhost",
        "http:#model", "http:http://127.0.0.1:1#"}) {
    RunResult r = Run({"stats", sem_db_, "--embedder", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("--embedder")) << bad;
  }
  // reembed needs an embedder.
  RunResult r = Run({"reembed", sem_db_});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);

  // A model directory that does not exist, and a server that is not there,
  // are runtime errors; nothing is changed.
  r = Run({"reembed", sem_db_, "--embedder",
           "model2vec:" + (dir_ / "no-such-model").string()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("cannot load embedder"));
  r = Run({"stats", sem_db_, "--embedder", "http:http://127.0.0.1:1#m"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("cannot load embedder"));

  r = Run({"stats", sem_db_, "--embedder", "builtin", "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ParseJson(r)["semantic"]["embedder"], "builtin-hash-v1/128");
}

const std::vector<std::vector<std::string>> kCommandsOnDb = {
    {"report"},
    {"report", "--json"},
    {"stats"},
    {"inspect", "--prompt", "x"},
    {"inspect", "--key", std::string(32, 'a')},
    {"export"},
    {"purge", "--ns", "acme"},
    {"stats", "--embedder", "builtin"},
    {"feedback", "--request", std::string(32, 'a'), "--entry",
     std::string(32, 'b')},
    {"reembed", "--embedder", "builtin:256"},
};

std::vector<std::string> WithDb(std::vector<std::string> command,
                                const std::string& db) {
  command.insert(command.begin() + 1, db);
  return command;
}

TEST_F(CliTest, MissingDbFailsCleanly) {
  const std::string missing = (dir_ / "no-such-db").string();
  for (const auto& command : kCommandsOnDb) {
    RunResult r = Run(WithDb(command, missing));
    EXPECT_EQ(r.exit_code, 1) << command[0] << ": " << Describe(r);
    EXPECT_THAT(r.err,
                HasSubstr("promptcache: cannot open DB '" + missing + "': "))
        << command[0];
    EXPECT_FALSE(fs::exists(missing)) << command[0] << " created the DB";
  }
}

TEST_F(CliTest, CorruptDbFailsCleanly) {
  // A RocksDB directory whose CURRENT file is garbage.
  const fs::path bad_current = dir_ / "bad-current";
  fs::copy(db_, bad_current, fs::copy_options::recursive);
  WriteFile(bad_current / "CURRENT", "\x01\x02garbage\xff\n");
  // A directory of random files that was never a database.
  const fs::path junk = dir_ / "junk";
  fs::create_directory(junk);
  WriteFile(junk / "CURRENT", "MANIFEST-000042\n");
  WriteFile(junk / "000001.sst", std::string(4096, '\x5a'));
  WriteFile(junk / "notes.txt", "hello");
  // A regular file where a directory is expected.
  const fs::path plain_file = dir_ / "plain-file";
  WriteFile(plain_file, "not a database");

  for (const fs::path& db : {bad_current, junk, plain_file}) {
    for (const auto& command : kCommandsOnDb) {
      RunResult r = Run(WithDb(command, db.string()));
      EXPECT_FALSE(r.signaled) << db << " " << command[0] << " crashed";
      EXPECT_EQ(r.exit_code, 1)
          << db << " " << command[0] << ": " << Describe(r);
      EXPECT_THAT(r.err, HasSubstr("promptcache: cannot open DB '" +
                                   db.string() + "': "))
          << db << " " << command[0];
    }
  }
}

TEST_F(CliTest, VerifyAndRepair) {
  RunResult r = Run({"verify", db_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_THAT(r.out, HasSubstr("ok: the cache is whole"));
  r = Run({"verify", db_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  json report = ParseJson(r);
  EXPECT_TRUE(report["ok"].get<bool>());
  EXPECT_EQ(report["entries"].get<int64_t>(), 4);
  // Repair of a whole cache changes nothing that matters.
  r = Run({"repair", db_});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Run({"stats", db_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ParseJson(r)["entries"].get<int64_t>(), 4);
  // A directory that is not a cache is left alone.
  const fs::path junk = dir_ / "junk-for-repair";
  fs::create_directory(junk);
  WriteFile(junk / "000001.sst", std::string(4096, '\x5a'));
  r = Run({"repair", junk.string()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("does not look like a promptcache cache"));
  EXPECT_FALSE(fs::exists(junk / "lost"));
  r = Run({"verify", junk.string()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr("cannot verify DB"));
}

TEST_F(CliTest, UsageErrors) {
  RunResult r = Run({});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  r = Run({"report"});  // DB missing
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  r = Run({"frobnicate", db_});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  r = Run({"inspect", db_, "--key", "00", "--prompt", "x"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);

  r = Run({"--help"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  for (const char* sub : {"report", "stats", "inspect", "purge", "export",
                          "import", "feedback", "reembed"}) {
    EXPECT_THAT(r.out, HasSubstr(sub));
    RunResult help = Run({sub, "--help"});
    EXPECT_EQ(help.exit_code, 0) << sub << ": " << Describe(help);
    EXPECT_THAT(help.out, HasSubstr("DB")) << sub;
  }
}

}  // namespace
}  // namespace promptcache
