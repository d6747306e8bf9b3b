// Exact-hit benchmarks for promptcache.
//
// Target (issue): "Exact hit in-process with 100k entries: p50 <= 5 us,
// >= 200k hits/s on one thread."
//
// Two modes:
//   exact_hit_bench [--benchmark_* flags]
//       The Google Benchmark suite (means per op, items/s).
//   exact_hit_bench --percentiles [--percentile_ops=200000]
//                   [--percentile_entries=100000] [--percentile_threads=N]
//       Times every single op of a loop over GetExact and CachedClient
//       hits and prints p50/p90/p99/p99.9/max and ops/s, with PASS/FAIL
//       against the target. With N > 1 threads, a last row times the
//       CachedClient hits from N threads at once.
//
// Experiment flags (both modes; the published numbers use neither):
//   --block_cache_mb=N   Options::block_cache_bytes = N MiB
//   --hot_cache_mb=N     Options::hot_cache_bytes = N MiB
//   --no_stats_flush     Options::stats_flush_interval = infinite (no
//                        background rewrite of hit entries)
//   --reopen             close and reopen each cache after filling it, so
//                        that every entry is in SST files, none in memtables
//
// Every cache lives in a fresh mkdtemp() directory under /tmp that is
// removed at exit.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench_text.h"
#include "promptcache/cache.h"
#include "promptcache/cache_tiers.h"
#include "promptcache/cached_client.h"
#include "promptcache/keys.h"
#include "promptcache/options.h"
#include "promptcache/request.h"
#include "promptcache/response.h"

namespace {

using promptcache::Cache;
using promptcache::CachedClient;
using promptcache::CacheStatus;
using promptcache::CacheTiers;
using promptcache::Canonicalize;
using promptcache::CanonicalizedRequest;
using promptcache::Key128;
using promptcache::Message;
using promptcache::Request;
using promptcache::Response;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "exact_hit_bench: %s\n", what.c_str());
  std::exit(2);
}

// --- Deterministic "realistic" text (bench_text.h) ---

using promptcache::bench::AppendWords;
using promptcache::bench::kSystemPrompts;
using promptcache::bench::SplitMix64;

constexpr size_t kNumSystemPrompts =
    sizeof(kSystemPrompts) / sizeof(kSystemPrompts[0]);

// Request number `i`: a system prompt and a ~200-byte user message.
Request MakeRequest(uint64_t i) {
  Request r;
  r.ns = "bench";
  r.backend = "openai";
  r.model = "gpt-4o-mini";
  r.params.temperature = 0.0;
  r.params.max_tokens = 512;
  Message system;
  system.role = "system";
  system.content = std::string(kSystemPrompts[i % kNumSystemPrompts]);
  Message user;
  user.role = "user";
  user.content = "Ticket " + std::to_string(i) + ": ";
  AppendWords(&user.content, i * 2 + 1, 200);
  r.messages.push_back(std::move(system));
  r.messages.push_back(std::move(user));
  return r;
}

// The ~1 KB answer to request `i`.
Response MakeAnswer(uint64_t i) {
  Response a;
  a.text.reserve(1100);
  AppendWords(&a.text, i * 2 + 2, 1024);
  a.finish_reason = "stop";
  a.usage.input_tokens = 95;
  a.usage.output_tokens = 230;
  a.upstream_latency = absl::Milliseconds(900);
  return a;
}

// --- Shared fixtures ---

std::string MakeTempDir() {
  char tmpl[] = "/tmp/promptcache-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die(std::string("mkdtemp: ") + strerror(errno));
  return tmpl;
}

// A cache filled with N entries plus a client over it whose upstream must
// never be called for the stored requests.
struct Fixture {
  int64_t entries = 0;
  std::string dir;
  std::unique_ptr<Cache> cache;
  std::unique_ptr<CachedClient> client;
  std::atomic<int64_t> upstream_calls{0};
  std::vector<Request> requests;  // requests[i] is stored
  std::vector<Key128> keys;       // keys[i] = exact key of requests[i]
  // A fixed pseudo-random access order over [0, entries).
  std::vector<uint32_t> order;
  // Next fresh request number for the miss benchmark.
  std::atomic<uint64_t> next_fresh{0};
  double fill_seconds = 0;
};

constexpr size_t kOrderSize = 1 << 20;  // power of two

// Option overrides (experiments only; the reported numbers use defaults).
int64_t block_cache_mb = 0;   // --block_cache_mb=N; 0: Options default
int64_t hot_cache_mb = -1;    // --hot_cache_mb=N; -1: Options default
bool no_stats_flush = false;  // --no_stats_flush: no background flusher
bool reopen = false;          // --reopen: close and reopen after the fill

std::mutex fixtures_mu;
std::map<int64_t, std::unique_ptr<Fixture>>* fixtures =
    new std::map<int64_t, std::unique_ptr<Fixture>>;

std::unique_ptr<Fixture> BuildFixture(int64_t n) {
  auto f = std::make_unique<Fixture>();
  f->entries = n;
  f->dir = MakeTempDir();
  promptcache::Options options;  // library defaults unless overridden
  if (block_cache_mb > 0) {
    options.block_cache_bytes = static_cast<size_t>(block_cache_mb) << 20;
  }
  if (hot_cache_mb >= 0) {
    options.hot_cache_bytes = static_cast<size_t>(hot_cache_mb) << 20;
    // The hot answers are charged to the block cache: make room for them.
    options.block_cache_bytes =
        std::max(options.block_cache_bytes,
                 promptcache::BlockCacheBytesFor(options.hot_cache_bytes));
  }
  if (no_stats_flush) options.stats_flush_interval = absl::InfiniteDuration();
  absl::StatusOr<std::unique_ptr<Cache>> cache = Cache::Open(f->dir, options);
  if (!cache.ok()) Die("Cache::Open: " + std::string(cache.status().message()));
  f->cache = *std::move(cache);
  Fixture* raw = f.get();
  const promptcache::ModelClient upstream =
      [raw](const Request&) -> absl::StatusOr<Response> {
    raw->upstream_calls.fetch_add(1, std::memory_order_relaxed);
    // Instant upstream: a fixed ~1 KB complete answer.
    static const Response* const kAnswer = new Response(MakeAnswer(0));
    return *kAnswer;
  };
  f->client = std::make_unique<CachedClient>(*f->cache, upstream);

  const Clock::time_point start = Clock::now();
  f->requests.reserve(n);
  f->keys.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    Request request = MakeRequest(i);
    absl::StatusOr<CanonicalizedRequest> canonical = Canonicalize(request);
    if (!canonical.ok()) {
      Die("Canonicalize: " + std::string(canonical.status().message()));
    }
    Response answer = MakeAnswer(i);
    absl::Status s = CacheTiers(*f->cache).StoreMiss(request, *canonical,
                                                     std::nullopt, &answer);
    if (!s.ok()) Die("StoreMiss: " + std::string(s.message()));
    f->keys.push_back(canonical->keys.exact);
    f->requests.push_back(std::move(request));
  }
  f->fill_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (reopen) {
    // Simulates a restart: RocksDB writes the recovered memtables to SST
    // files, so every lookup goes to the block cache / files.
    f->client.reset();
    f->cache.reset();
    cache = Cache::Open(f->dir, options);
    if (!cache.ok()) {
      Die("Cache::Open (reopen): " + std::string(cache.status().message()));
    }
    f->cache = *std::move(cache);
    f->client = std::make_unique<CachedClient>(*f->cache, upstream);
  }
  f->next_fresh = static_cast<uint64_t>(n) + 1000000000ULL;

  uint64_t state = 0x5EED0000 + static_cast<uint64_t>(n);
  f->order.resize(kOrderSize);
  for (uint32_t& index : f->order) {
    index = static_cast<uint32_t>(SplitMix64(state) % static_cast<uint64_t>(n));
  }
  std::fprintf(stderr,
               "[setup] %" PRId64 " entries stored in %.2f s (%s)%s%s%s\n", n,
               f->fill_seconds, f->dir.c_str(),
               block_cache_mb > 0 ? " [non-default block_cache_mb]" : "",
               no_stats_flush ? " [stats flusher off]" : "",
               reopen ? " [reopened]" : "");
  return f;
}

// The fixture with `n` entries, built on first use (thread-safe).
Fixture& GetFixture(int64_t n) {
  std::lock_guard<std::mutex> lock(fixtures_mu);
  std::unique_ptr<Fixture>& f = (*fixtures)[n];
  if (f == nullptr) f = BuildFixture(n);
  return *f;
}

// Closes every cache and removes its directory. Idempotent.
void RemoveFixtures() {
  std::lock_guard<std::mutex> lock(fixtures_mu);
  for (auto& [n, f] : *fixtures) {
    f->client.reset();
    f->cache.reset();
    std::error_code ec;
    std::filesystem::remove_all(f->dir, ec);
  }
  fixtures->clear();
}

// --- Google Benchmark suite ---

// (a) Cache::GetExact by a precomputed key: RocksDB point lookup + decode
// of the answer, nothing else.
void BM_GetExact(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    absl::StatusOr<Response> r =
        CacheTiers(*f.cache).GetExact(f.keys[f.order[i++ & (kOrderSize - 1)]]);
    if (!r.ok()) {
      state.SkipWithError("GetExact did not hit");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}

// (b) CachedClient::Complete on stored requests: canonicalize + hash +
// GetExact + RecordHit. The upstream must never be called.
void BM_CompleteHit(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  const int64_t calls_before = f.upstream_calls.load();
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    absl::StatusOr<Response> r =
        f.client->Complete(f.requests[f.order[i++ & (kOrderSize - 1)]]);
    if (!r.ok() || r->cache_status != CacheStatus::kExactHit) {
      state.SkipWithError("Complete did not answer from the exact tier");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    // Calls made during this run by any thread (must be 0).
    state.counters["upstream_calls"] =
        static_cast<double>(f.upstream_calls.load() - calls_before);
  }
}

// (c) Canonicalize alone (validation + canonical JSON + three XXH3-128).
void BM_Canonicalize(benchmark::State& state) {
  constexpr size_t kPool = 1024;
  std::vector<Request> pool;
  pool.reserve(kPool);
  for (size_t k = 0; k < kPool; ++k) pool.push_back(MakeRequest(k));
  size_t i = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<CanonicalizedRequest> c =
        Canonicalize(pool[i++ & (kPool - 1)]);
    if (!c.ok()) {
      state.SkipWithError("Canonicalize failed");
      break;
    }
    bytes += static_cast<int64_t>(c->canonical.size());
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes);
}

// (d) A never-seen request per iteration through CachedClient with an
// instant upstream: canonicalize, miss (bloom filter), in-flight
// registration, second lookup, upstream, StoreMiss (read + atomic write of
// entry and ledger row). Each iteration patches the request number into the
// user message (a few ns of the time). Runs last: it adds entries to the
// shared cache.
void BM_CompleteMissStore(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  Request request = MakeRequest(0);
  std::string& content = request.messages[1].content;
  const std::string base = content;
  const int64_t calls_before = f.upstream_calls.load();
  for (auto _ : state) {
    content.assign(base);
    content.append(" #");
    content.append(std::to_string(f.next_fresh.fetch_add(1)));
    absl::StatusOr<Response> r = f.client->Complete(request);
    if (!r.ok() || r->cache_status != CacheStatus::kMiss || !r->stored) {
      state.SkipWithError("Complete did not miss and store");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["upstream_calls"] =
      static_cast<double>(f.upstream_calls.load() - calls_before);
}

BENCHMARK(BM_GetExact)->Arg(10000)->Arg(100000);
BENCHMARK(BM_CompleteHit)->Arg(10000)->Arg(100000);
BENCHMARK(BM_CompleteHit)->Arg(10000)->Arg(100000)->Threads(2)->UseRealTime();
BENCHMARK(BM_Canonicalize);
BENCHMARK(BM_CompleteMissStore)->Arg(10000)->Arg(100000);

// --- Per-op latency percentiles ---

struct LoopResult {
  std::vector<int64_t> ns;  // per-op latency
  double wall_seconds = 0;  // whole loop, including the timing overhead
  double cpu_seconds = 0;   // this thread's CPU time over the loop
  int64_t failures = 0;
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) +
         static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The 1-minute load average: other processes competing for the CPUs.
std::string LoadAverage() {
  std::FILE* file = std::fopen("/proc/loadavg", "r");
  if (file == nullptr) return "?";
  char buf[64] = {};
  const bool ok = std::fgets(buf, sizeof(buf), file) != nullptr;
  std::fclose(file);
  if (!ok) return "?";
  return std::string(buf, strcspn(buf, " "));
}

template <typename Op>
LoopResult TimeEachOp(const Fixture& f, int64_t ops, size_t offset, Op op) {
  LoopResult out;
  out.ns.resize(static_cast<size_t>(ops));
  const double cpu_start = ThreadCpuSeconds();
  const Clock::time_point loop_start = Clock::now();
  for (int64_t k = 0; k < ops; ++k) {
    const uint32_t index = f.order[(offset + k) & (kOrderSize - 1)];
    const Clock::time_point t0 = Clock::now();
    const bool ok = op(index);
    const Clock::time_point t1 = Clock::now();
    out.ns[static_cast<size_t>(k)] =
        std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    if (!ok) ++out.failures;
  }
  out.wall_seconds =
      std::chrono::duration<double>(Clock::now() - loop_start).count();
  out.cpu_seconds = ThreadCpuSeconds() - cpu_start;
  return out;
}

double Percentile(const std::vector<int64_t>& sorted, double p) {
  const size_t index = std::min(
      sorted.size() - 1,
      static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[index]) / 1000.0;  // us
}

// Prints one result line; returns whether it meets the target.
bool Report(const char* name, LoopResult r, bool judged) {
  std::sort(r.ns.begin(), r.ns.end());
  const double ops_per_s = static_cast<double>(r.ns.size()) / r.wall_seconds;
  const double p50 = Percentile(r.ns, 50);
  const bool pass = p50 <= 5.0 && ops_per_s >= 200000.0 && r.failures == 0;
  std::printf("%-22s %8zu %8.2f %8.2f %8.2f %8.2f %9.1f %10.0f %9.2f %6" PRId64
              "  %s\n",
              name, r.ns.size(), p50, Percentile(r.ns, 90),
              Percentile(r.ns, 99), Percentile(r.ns, 99.9),
              static_cast<double>(r.ns.back()) / 1000.0, ops_per_s,
              r.cpu_seconds * 1e6 / static_cast<double>(r.ns.size()),
              r.failures, judged ? (pass ? "PASS" : "FAIL") : "(not judged)");
  return pass;
}

int RunPercentiles(int64_t entries, int64_t ops, int64_t threads) {
  Fixture& f = GetFixture(entries);
  constexpr int64_t kWarmup = 50000;

  auto get_exact = [&f](uint32_t index) {
    absl::StatusOr<Response> r = CacheTiers(*f.cache).GetExact(f.keys[index]);
    benchmark::DoNotOptimize(r);
    return r.ok();
  };
  auto complete_hit = [&f](uint32_t index) {
    absl::StatusOr<Response> r = f.client->Complete(f.requests[index]);
    benchmark::DoNotOptimize(r);
    return r.ok() && r->cache_status == CacheStatus::kExactHit;
  };

  std::printf("\nPer-op latency, %" PRId64 " entries, %" PRId64
              " ops per row after %" PRId64
              " warm-up ops, one thread, random keys\n"
              "target: p50 <= 5 us and >= 200000 ops/s\n\n",
              entries, ops, kWarmup);
  std::printf("load average before: %s\n\n", LoadAverage().c_str());
  std::printf("%-22s %8s %8s %8s %8s %8s %9s %10s %9s %6s  %s\n", "op", "ops",
              "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "ops/s",
              "cpu_us/op", "failed", "target");
  const int64_t calls_before = f.upstream_calls.load();
  TimeEachOp(f, kWarmup, 0, get_exact);
  Report("Cache::GetExact", TimeEachOp(f, ops, kWarmup, get_exact),
         /*judged=*/false);
  TimeEachOp(f, kWarmup, 0, complete_hit);
  const bool pass = Report("CachedClient::Complete",
                           TimeEachOp(f, ops, kWarmup + 1, complete_hit),
                           /*judged=*/true);
  if (threads > 1) {
    // The same hits from `threads` threads at once on the shared client:
    // percentiles over all their ops, ops/s over the slowest thread's wall
    // time, CPU per op summed over the threads.
    std::vector<LoopResult> results(static_cast<size_t>(threads));
    std::vector<std::thread> workers;
    for (int64_t t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const size_t offset = static_cast<size_t>(t) * 7919;
        TimeEachOp(f, kWarmup / threads, offset, complete_hit);
        results[static_cast<size_t>(t)] =
            TimeEachOp(f, ops, offset + kWarmup, complete_hit);
      });
    }
    for (std::thread& w : workers) w.join();
    LoopResult merged;
    for (LoopResult& r : results) {
      merged.ns.insert(merged.ns.end(), r.ns.begin(), r.ns.end());
      merged.wall_seconds = std::max(merged.wall_seconds, r.wall_seconds);
      merged.cpu_seconds += r.cpu_seconds;
      merged.failures += r.failures;
    }
    const std::string name =
        "Complete, " + std::to_string(threads) + " threads";
    Report(name.c_str(), std::move(merged), /*judged=*/false);
  }
  const int64_t calls = f.upstream_calls.load() - calls_before;
  std::printf("\nload average after: %s (%ld CPUs)\n", LoadAverage().c_str(),
              sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("upstream calls during the hit loops: %" PRId64 " (must be 0)\n",
              calls);
  std::printf("exact hit target (CachedClient::Complete): %s\n",
              pass ? "PASS" : "FAIL");
  return calls == 0 ? 0 : 1;
}

bool ParseFlag(const char* arg, std::string_view name, int64_t* value) {
  std::string_view a(arg);
  if (a.substr(0, name.size()) != name || a.size() <= name.size() ||
      a[name.size()] != '=') {
    return false;
  }
  *value = std::strtoll(arg + name.size() + 1, nullptr, 10);
  if (*value <= 0) Die(std::string("bad value in ") + arg);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::atexit(RemoveFixtures);
  bool percentiles = false;
  int64_t ops = 200000;
  int64_t entries = 100000;
  int64_t threads = 1;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::string_view(argv[i]) == "--percentiles") {
      percentiles = true;
    } else if (i > 0 && std::string_view(argv[i]) == "--no_stats_flush") {
      no_stats_flush = true;
    } else if (i > 0 && std::string_view(argv[i]) == "--reopen") {
      reopen = true;
    } else if (i > 0 &&
               (ParseFlag(argv[i], "--percentile_ops", &ops) ||
                ParseFlag(argv[i], "--percentile_entries", &entries) ||
                ParseFlag(argv[i], "--percentile_threads", &threads) ||
                ParseFlag(argv[i], "--block_cache_mb", &block_cache_mb) ||
                ParseFlag(argv[i], "--hot_cache_mb", &hot_cache_mb))) {
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (percentiles) {
    const int rc = RunPercentiles(entries, ops, threads);
    RemoveFixtures();
    return rc;
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  RemoveFixtures();
  return 0;
}
