// Crash test (issue 14): a child process works the cache (misses, hits,
// semantic hits, purges, feedback, stats flushes, evictions) and is killed
// with SIGKILL at random moments. After every kill the cache is reopened and
// checked: every acknowledged write is there, the ledger adds up to the
// entries, the vector index agrees with the store, and no answer belongs to
// another prompt.
//
// PROMPTCACHE_CRASH_KILLS sets the number of kills (default 100; the soak
// script tools/crash_soak.sh runs thousands).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "promptcache/builtin_embedder.h"
#include "promptcache/cache_tiers.h"
#include "promptcache/cached_client.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

constexpr int kPrompts = 400;
constexpr char kKept[] = "keep";        // never purged
constexpr char kScratch[] = "scratch";  // purged now and then

std::string Prompt(int i) {
  return absl::StrCat("How do I configure feature number ", i,
                      " of the billing service?");
}

Options CrashOptions(bool evict) {
  Options options;
  options.embedder = std::make_shared<BuiltinEmbedder>();
  // Flushes happen in the child's loop, and on their own now and then;
  // each writes the ledger with the entries' counters in one batch
  // (Options::entry_stats_flush_interval), so that they must agree.
  options.stats_flush_interval = absl::Milliseconds(20);
  options.entry_stats_flush_interval = absl::Microseconds(1);
  if (evict) options.max_bytes = 96 << 10;
  return options;
}

ModelClient Upstream() {
  return [](const Request& r) {
    return absl::StatusOr<Response>(
        MakeAnswer("answer to " + r.messages.back().content));
  };
}

// The child: works until killed, writing "<i>\n" to `ack_fd` once the answer
// to Prompt(i) in kKept is acknowledged as stored.
[[noreturn]] void Work(const std::string& path, bool evict, uint32_t seed,
                       int ack_fd) {
  auto cache = Cache::Open(path, CrashOptions(evict));
  if (!cache.ok()) _exit(2);
  CachedClient client(**cache, Upstream());
  // Tells the parent the cache is open (a line ReadAcks skips).
  if (write(ack_fd, "open\n", 5) < 0) _exit(3);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> prompt(0, kPrompts - 1);
  std::uniform_int_distribution<int> op(0, 99);
  for (;;) {
    const int i = prompt(rng);
    const int what = op(rng);
    if (what < 55) {
      absl::StatusOr<Response> r =
          client.Complete(MakeRequest(Prompt(i), kKept));
      if (r.ok() && r->stored) {
        const std::string line = absl::StrCat(i, "\n");
        if (write(ack_fd, line.data(), line.size()) < 0) _exit(3);
      }
    } else if (what < 70) {
      // A rewording: a semantic hit, sometimes reported wrong.
      absl::StatusOr<Response> r = client.Complete(
          MakeRequest(absl::StrCat("how do i configure feature number ", i,
                                   " of the billing service"),
                      kKept));
      if (r.ok() && r->cache_status == CacheStatus::kSemanticHit && what < 60) {
        (*cache)->ReportFalseHit(*r->request_key, *r->entry_key).IgnoreError();
      }
    } else if (what < 90) {
      client.Complete(MakeRequest(Prompt(i), kScratch)).IgnoreError();
    } else if (what < 95) {
      PurgeFilter filter;
      filter.ns = kScratch;
      (*cache)->Purge(filter).IgnoreError();
    } else {
      (*cache)->FlushStats().IgnoreError();
    }
  }
}

// Reads what the child acknowledged before it died.
// `text`: what was read before (the first byte, in rounds that waited for
// it).
std::set<int> ReadAcks(int fd, std::string text) {
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) {
    text.append(buffer, static_cast<size_t>(n));
  }
  std::set<int> acks;
  // A line cut by the kill was never acknowledged in full.
  if (!text.empty() && text.back() != '\n') text.erase(text.rfind('\n') + 1);
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    int i = 0;
    if (absl::SimpleAtoi(line, &i)) acks.insert(i);
  }
  return acks;
}

void CheckAfterCrash(const std::string& path, bool evict,
                     const std::set<int>& acked, int round) {
  // What one hit of one of these prompts saves, at most (MakeAnswer's usage
  // at gpt-4o-mini's price).
  const int64_t max_saved_per_hit =
      CostNanoDollars(*PriceBook::Default().Find("openai", "gpt-4o-mini"),
                      MakeAnswer("").usage);
  SCOPED_TRACE(absl::StrCat("round ", round, evict ? " (evicting)" : ""));
  auto cache = Cache::Open(path, CrashOptions(evict));
  ASSERT_TRUE(cache.ok()) << cache.status();
  // wal_bytes_dropped may be > 0: a kill inside a write tears the log's last
  // record, a write never acknowledged (the acknowledged ones are checked
  // below).
  (*cache)->WaitForSemanticIndex();

  // No answer belongs to another prompt; count the kept ones' hits.
  int64_t entries = 0, kept_entries = 0, kept_hits = 0, kept_saved = 0;
  std::set<std::string> kept_texts;
  ASSERT_TRUE((*cache)
                  ->ForEachEntry([&](const EntryInfo& e) {
                    ++entries;
                    for (const Answer& answer : e.answers) {
                      const std::string prompt =
                          answer.text.substr(std::string("answer to ").size());
                      EXPECT_TRUE(
                          absl::StartsWith(answer.text, "answer to ") &&
                          absl::StrContains(e.canonical_request, prompt))
                          << answer.text;
                    }
                    if (e.ns == kKept) {
                      ++kept_entries;
                      kept_hits += e.hit_count;
                      kept_saved += e.saved_nusd;
                    }
                    return true;
                  })
                  .ok());
  // The index holds a vector for every entry, and none for entries gone.
  EXPECT_EQ((*cache)->GetSemanticStats().vectors, entries);

  if (evict) return;  // Evictions remove acknowledged entries on purpose.
  // Every acknowledged write is there, with its own answer.
  for (int i : acked) {
    Request r = MakeRequest(Prompt(i), kKept);
    absl::StatusOr<CanonicalizedRequest> canonical = Canonicalize(r);
    ASSERT_TRUE(canonical.ok());
    absl::StatusOr<Response> got =
        CacheTiers(**cache).GetExact(canonical->keys.exact);
    ASSERT_TRUE(got.ok()) << "acknowledged prompt " << i
                          << " lost: " << got.status();
    EXPECT_EQ(got->text, "answer to " + Prompt(i));
  }
  // The ledger adds up to the entries (the kept namespace is never purged).
  absl::StatusOr<SavingsReport> report = (*cache)->Report();
  ASSERT_TRUE(report.ok());
  LedgerRow kept;
  for (const LedgerRow& row : report->rows) {
    if (row.ns == kKept) kept.Add(row);
  }
  // Stores write the entry and its ledger row in one batch: exact.
  EXPECT_EQ(kept.stored, kept_entries);
  // A hit is counted in the ledger and on its entry one after the other,
  // without a lock spanning both (the hit path's speed): a flush that runs
  // between the two writes one and leaves the other to the next flush. A
  // kill before that leaves them apart by that one hit (the child has one
  // calling thread), so by at most one per kill so far.
  const int64_t ledger_hits = kept.exact_hits + kept.semantic_hits;
  EXPECT_LE(std::abs(ledger_hits - kept_hits), round + 1)
      << "ledger " << ledger_hits << ", entries " << kept_hits;
  EXPECT_LE(std::abs(kept.saved_nusd - kept_saved),
            (round + 1) * max_saved_per_hit);
}

// The store itself: every table readable, every record decodes, no vector
// or counter of an entry that is gone.
void VerifyAfterCrash(const std::string& path, int round) {
  SCOPED_TRACE(absl::StrCat("round ", round));
  absl::StatusOr<VerifyReport> verify = Cache::Verify(path);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_TRUE(verify->ok()) << verify->problems[0];
  EXPECT_EQ(verify->vectors, verify->entries);
}

TEST(CrashTest, EveryAcknowledgedWriteSurvivesSigkill) {
  int kills = 100;
  if (const char* env = std::getenv("PROMPTCACHE_CRASH_KILLS")) {
    ASSERT_TRUE(absl::SimpleAtoi(env, &kills) && kills > 0) << env;
  }
  std::mt19937 rng(20261206);
  for (bool evict : {false, true}) {
    TempDir dir;
    std::set<int> acked;
    const int rounds = evict ? kills / 4 : kills - kills / 4;
    for (int round = 0; round < rounds; ++round) {
      int pipe_fds[2];
      ASSERT_EQ(pipe(pipe_fds), 0);
      const uint32_t seed = rng();
      const pid_t child = fork();
      ASSERT_GE(child, 0);
      if (child == 0) {
        close(pipe_fds[0]);
        Work(dir.path(), evict, seed, pipe_fds[1]);
      }
      close(pipe_fds[1]);
      // Every other round waits until the child has opened the cache, so
      // that the children get work done between kills however slow the
      // machine (or a sanitizer) makes opening; the others may kill it
      // while it opens.
      std::string head;
      if (round % 2 == 1) {
        char c = 0;
        if (read(pipe_fds[0], &c, 1) == 1) head.push_back(c);
      }
      // Killed anywhere from opening to deep in its work.
      const int delay_ms = std::uniform_int_distribution<int>(5, 250)(rng);
      usleep(static_cast<useconds_t>(delay_ms) * 1000);
      ASSERT_EQ(kill(child, SIGKILL), 0);
      int status = 0;
      ASSERT_EQ(waitpid(child, &status, 0), child);
      ASSERT_TRUE(WIFSIGNALED(status))
          << "the child stopped by itself: " << status;
      for (int i : ReadAcks(pipe_fds[0], head)) acked.insert(i);
      close(pipe_fds[0]);
      CheckAfterCrash(dir.path(), evict, acked, round);
      VerifyAfterCrash(dir.path(), round);
      if (::testing::Test::HasFailure()) return;
    }
    // The children got work done between kills, not only opens.
    if (!evict) {
      EXPECT_GT(acked.size(), 50u);
    }
    std::printf("%s: %d kills, %zu prompts acknowledged\n",
                evict ? "evicting" : "keeping", rounds, acked.size());
  }
}

}  // namespace
}  // namespace promptcache
