// CachedClient: the middleware loop around a (fake) paid upstream.
#include "promptcache/cached_client.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;

// The paid backend cannot be reached here: a fake that counts calls.
class FakeUpstream {
 public:
  ModelClient AsClient() {
    return [this](const Request& r) -> absl::StatusOr<Response> {
      calls_.fetch_add(1);
      if (delay_ > absl::ZeroDuration()) absl::SleepFor(delay_);
      if (fail_) return absl::UnavailableError("upstream 503");
      Response answer = MakeAnswer("answer to: " + r.messages.back().content +
                                       " #" + std::to_string(calls_.load()),
                                   finish_reason_);
      return answer;
    };
  }
  int calls() const { return calls_.load(); }
  absl::Duration delay_ = absl::ZeroDuration();
  bool fail_ = false;
  std::string finish_reason_ = "stop";

 private:
  std::atomic<int> calls_{0};
};

class CachedClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.stats_flush_interval = absl::InfiniteDuration();
    absl::StatusOr<std::unique_ptr<Cache>> cache = Cache::Open(dir_.path(), o);
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
    client_ = std::make_unique<CachedClient>(*cache_, upstream_.AsClient());
  }
  TempDir dir_;
  FakeUpstream upstream_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<CachedClient> client_;
};

TEST_F(CachedClientTest, MissThenExactHit) {
  const Request q = MakeRequest("How do I rotate my API key?");
  absl::StatusOr<Response> first = client_->Complete(q);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->cache_status, CacheStatus::kMiss);
  EXPECT_TRUE(first->stored);
  absl::StatusOr<Response> second = client_->Complete(q);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->cache_status, CacheStatus::kExactHit);
  EXPECT_EQ(second->text, first->text);
  EXPECT_EQ(second->entry_key, first->entry_key);
  EXPECT_NEAR(second->dollars_saved, first->dollars_spent, 1e-12);
  EXPECT_EQ(upstream_.calls(), 1);
  // Another tenant asking the same thing pays for its own answer.
  absl::StatusOr<Response> other =
      client_->Complete(MakeRequest("How do I rotate my API key?", "tenant-b"));
  EXPECT_EQ(other->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(upstream_.calls(), 2);
  // A different model or temperature is a miss too.
  EXPECT_EQ(client_
                ->Complete(MakeRequest("How do I rotate my API key?",
                                       "tenant-a", "gpt-4o"))
                ->cache_status,
            CacheStatus::kMiss);
  Request cold = q;
  cold.params.temperature = 0;
  EXPECT_EQ(client_->Complete(cold)->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(upstream_.calls(), 4);
}

TEST_F(CachedClientTest, UpstreamErrorsAreReturnedAndNeverCached) {
  const Request q = MakeRequest("Summarize this");
  upstream_.fail_ = true;
  absl::StatusOr<Response> failed = client_->Complete(q);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  upstream_.fail_ = false;
  absl::StatusOr<Response> ok = client_->Complete(q);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(upstream_.calls(), 2);
  const LedgerRow row = cache_->Report()->rows.at(0);
  EXPECT_EQ(row.upstream_errors, 1);
  EXPECT_EQ(row.misses, 2);
  EXPECT_EQ(row.stored, 1);
}

TEST_F(CachedClientTest, IncompleteAnswersAreReturnedButNotCached) {
  const Request q = MakeRequest("Write a novel");
  upstream_.finish_reason_ = "length";
  absl::StatusOr<Response> truncated = client_->Complete(q);
  ASSERT_TRUE(truncated.ok());
  EXPECT_EQ(truncated->finish_reason, "length");
  EXPECT_FALSE(truncated->stored);
  EXPECT_EQ(client_->Complete(q)->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(upstream_.calls(), 2);
  EXPECT_EQ(cache_->Stats()->entries, 0);
}

TEST_F(CachedClientTest, ThirtyTwoConcurrentIdenticalRequestsMakeOneCall) {
  upstream_.delay_ = absl::Milliseconds(300);
  const Request q = MakeRequest("Explain the CAP theorem");
  constexpr int kThreads = 32;
  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<Response>> results(kThreads);
  std::atomic<int> ready{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      results[i] = client_->Complete(q);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(upstream_.calls(), 1);
  int misses = 0, waited = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->text, results[0]->text);
    misses += r->cache_status == CacheStatus::kMiss;
    waited += r->cache_status == CacheStatus::kCoalesced ||
              r->cache_status == CacheStatus::kExactHit;
  }
  EXPECT_EQ(misses, 1);
  EXPECT_EQ(waited, kThreads - 1);
  const LedgerRow row = cache_->Report()->rows.at(0);
  EXPECT_EQ(row.requests, kThreads);
  EXPECT_EQ(row.misses, 1);
  EXPECT_EQ(row.hits(), kThreads - 1);
}

TEST_F(CachedClientTest, ConcurrentErrorsReachEveryWaiterAndAreNotCached) {
  upstream_.delay_ = absl::Milliseconds(200);
  upstream_.fail_ = true;
  const Request q = MakeRequest("flaky");
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (!client_->Complete(q).ok()) errors.fetch_add(1);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 8);
  EXPECT_LT(upstream_.calls(), 8);
  EXPECT_EQ(cache_->Stats()->entries, 0);
  // Every caller saw an error; only real upstream calls count as misses
  // and upstream errors.
  const LedgerRow row = cache_->Report()->rows.at(0);
  EXPECT_EQ(row.requests, 8);
  EXPECT_EQ(row.upstream_errors, upstream_.calls());
  EXPECT_EQ(row.misses, upstream_.calls());
}

TEST_F(CachedClientTest, PerCallControls) {
  const Request q = MakeRequest("What's the weather like?");
  CallOptions no_store;
  no_store.no_store = true;
  EXPECT_FALSE(client_->Complete(q, no_store)->stored);
  EXPECT_EQ(client_->Complete(q)->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(client_->Complete(q, no_store)->cache_status,
            CacheStatus::kExactHit);  // no_store still reads
  CallOptions bypass;
  bypass.bypass = true;
  EXPECT_EQ(client_->Complete(q, bypass)->cache_status, CacheStatus::kBypass);
  EXPECT_EQ(upstream_.calls(), 3);
  CallOptions refresh;
  refresh.force_refresh = true;
  absl::StatusOr<Response> refreshed = client_->Complete(q, refresh);
  EXPECT_EQ(refreshed->cache_status, CacheStatus::kRefresh);
  EXPECT_EQ(upstream_.calls(), 4);
  EXPECT_EQ(client_->Complete(q)->text, refreshed->text);  // the fresh one
  CallOptions short_ttl;
  short_ttl.ttl = absl::Milliseconds(1);
  const Request brief = MakeRequest("stock price now?");
  ASSERT_TRUE(client_->Complete(brief, short_ttl).ok());
  absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(client_->Complete(brief)->cache_status, CacheStatus::kMiss);
}

TEST_F(CachedClientTest, BadInputsAreClearErrorsAndLeaveTheDbIntact) {
  ASSERT_TRUE(client_->Complete(MakeRequest("keep me")).ok());
  const int64_t entries = cache_->Stats()->entries;
  std::vector<Request> bad;
  Request r = MakeRequest("x");
  r.messages.clear();
  bad.push_back(r);
  bad.push_back(MakeRequest("invalid \xFF utf8"));
  bad.push_back(MakeRequest(std::string(10 << 20, 'p')));
  r = MakeRequest("x");
  r.model = "";
  bad.push_back(r);
  // A NUL in a name: refused before the upstream is called or a ledger row
  // is written (it once merged two rows and made the next open fail).
  r = MakeRequest("x");
  r.model = std::string("m\0x", 3);
  bad.push_back(r);
  const int64_t ledger_rows = cache_->Report()->rows.size();
  for (const Request& b : bad) {
    absl::StatusOr<Response> result = client_->Complete(b);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(result.status().message().empty());
  }
  EXPECT_EQ(upstream_.calls(), 1);
  EXPECT_EQ(cache_->Stats()->entries, entries);
  EXPECT_EQ(cache_->Report()->rows.size(), ledger_rows);
  EXPECT_EQ(client_->Complete(MakeRequest("keep me"))->cache_status,
            CacheStatus::kExactHit);
}

TEST_F(CachedClientTest, ANonPositiveTtlIsRefusedBeforePayingTheUpstream) {
  for (absl::Duration ttl : {absl::ZeroDuration(), absl::Seconds(-5)}) {
    CallOptions call;
    call.ttl = ttl;
    absl::StatusOr<Response> r =
        client_->Complete(MakeRequest("short-lived question"), call);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("ttl"), absl::string_view::npos);
  }
  EXPECT_EQ(upstream_.calls(), 0);
}

TEST_F(CachedClientTest, ThrowingUpstreamIsAnErrorNotACrash) {
  CachedClient throwing(*cache_,
                        [](const Request&) -> absl::StatusOr<Response> {
                          throw std::runtime_error("boom");
                        });
  absl::StatusOr<Response> r = throwing.Complete(MakeRequest("q"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("boom"), absl::string_view::npos);
}

TEST_F(CachedClientTest, WaitersOfARejectedKeyCallUpstreamThemselves) {
  // The leader's key is refused; the waiters bring good keys.
  std::atomic<int> calls{0};
  const Request q = MakeRequest("whose key works?");
  ModelClient bad_key = [&](const Request&) -> absl::StatusOr<Response> {
    calls.fetch_add(1);
    absl::SleepFor(absl::Milliseconds(200));
    return absl::UnauthenticatedError("HTTP 401: invalid key");
  };
  ModelClient good_key = [&](const Request&) -> absl::StatusOr<Response> {
    calls.fetch_add(1);
    return MakeAnswer("the answer");
  };
  absl::StatusOr<Response> leader_result;
  std::thread leader(
      [&] { leader_result = client_->Complete(q, {}, bad_key); });
  absl::SleepFor(absl::Milliseconds(50));
  std::vector<std::thread> waiters;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&] {
      if (client_->Complete(q, {}, good_key).ok()) ok.fetch_add(1);
    });
  }
  leader.join();
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(leader_result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ok.load(), 4);
  // Other errors are still shared (see ConcurrentErrorsReachEveryWaiter...).
  EXPECT_GE(calls.load(), 2);
}

TEST_F(CachedClientTest, PerCallUpstreamReplacesTheClientsOwn) {
  FakeUpstream other;
  const Request q = MakeRequest("Which upstream answers this?");
  absl::StatusOr<Response> first = client_->Complete(q, {}, other.AsClient());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->cache_status, CacheStatus::kMiss);
  EXPECT_EQ(other.calls(), 1);
  EXPECT_EQ(upstream_.calls(), 0);
  // Stored like any miss: the client's own upstream is not needed for a hit.
  absl::StatusOr<Response> again = client_->Complete(q);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->cache_status, CacheStatus::kExactHit);
  EXPECT_EQ(again->text, first->text);
  EXPECT_EQ(upstream_.calls(), 0);
  // An empty upstream is an error, not a crash.
  absl::StatusOr<Response> empty =
      client_->Complete(MakeRequest("Nobody answers"), {}, ModelClient());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CachedClientBucketTest, TemperatureAboveZeroFillsABucket) {
  TempDir dir;
  Options o;
  o.max_answers_per_key = 3;
  auto cache = *Cache::Open(dir.path(), o);
  FakeUpstream upstream;
  CachedClient client(*cache, upstream.AsClient());
  Request q = MakeRequest("Write a haiku about caches");
  q.params.temperature = 0.8;
  std::set<std::string> texts;
  for (int i = 0; i < 9; ++i) texts.insert(client.Complete(q)->text);
  EXPECT_EQ(upstream.calls(), 3);
  EXPECT_EQ(texts.size(), 3u);
  // Temperature 0 needs only one answer.
  Request cold = q;
  cold.params.temperature = 0;
  client.Complete(cold).IgnoreError();
  client.Complete(cold).IgnoreError();
  EXPECT_EQ(upstream.calls(), 4);
}

}  // namespace
}  // namespace promptcache
