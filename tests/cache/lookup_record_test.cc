// Cache::Lookup and Cache::Record, the protocol a client speaks to the
// cache, used directly as a client of one's own would: each request is
// counted once, by one of the two calls.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "promptcache/builtin_embedder.h"
#include "promptcache/cache.h"
#include "promptcache/cache_tiers.h"
#include "test_util.h"

namespace promptcache {
namespace {

using testing::MakeAnswer;
using testing::MakeRequest;
using testing::TempDir;
using Tiers = LookupOptions::Tiers;

class LookupRecordTest : public ::testing::Test {
 protected:
  void Open(bool semantic = false) {
    Options o;
    o.stats_flush_interval = absl::InfiniteDuration();
    if (semantic) {
      o.embedder = std::make_shared<BuiltinEmbedder>();
      o.semantic.threshold = 0.8;  // plumbing, not the match decision
    }
    cache_.reset();
    absl::StatusOr<std::unique_ptr<Cache>> c = Cache::Open(dir_.path(), o);
    ASSERT_TRUE(c.ok()) << c.status();
    cache_ = *std::move(c);
  }
  LedgerRow Total() {
    absl::StatusOr<SavingsReport> report = cache_->Report();
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? report->total : LedgerRow();
  }
  // A miss answered by "upstream" and recorded; returns the answer.
  Response AnswerMiss(const Request& q, const LookupResult& lookup,
                      const std::string& text) {
    Response answer = MakeAnswer(text);
    cache_->Record(q, lookup, Outcome(), &answer);
    return answer;
  }

  TempDir dir_;
  std::unique_ptr<Cache> cache_;
};

TEST_F(LookupRecordTest, EachRequestIsCountedOnceByLookupOrRecord) {
  Open();
  const Request q = MakeRequest("What is the capital of France?");
  LookupResult miss;
  ASSERT_TRUE(cache_->Lookup(q, {}, &miss).ok());
  EXPECT_FALSE(miss.hit.has_value());
  EXPECT_TRUE(miss.canonicalized);
  EXPECT_EQ(miss.exact_key, ComputeKeys(q)->exact);
  EXPECT_EQ(Total().requests, 0);  // a miss is counted by Record

  Response stored = AnswerMiss(q, miss, "Paris");
  EXPECT_TRUE(stored.stored);
  EXPECT_EQ(stored.cache_status, CacheStatus::kMiss);
  EXPECT_EQ(stored.entry_key, miss.exact_key);
  EXPECT_GT(stored.dollars_spent, 0);

  LookupResult again;
  ASSERT_TRUE(cache_->Lookup(q, {}, &again).ok());
  ASSERT_TRUE(again.hit.has_value());
  EXPECT_EQ(again.hit->text, "Paris");
  EXPECT_EQ(again.hit->cache_status, CacheStatus::kExactHit);
  EXPECT_EQ(again.hit->request_key, miss.exact_key);
  EXPECT_EQ(again.hit->similarity, 1);
  EXPECT_GT(again.hit->dollars_saved, 0);
  // Found from the key alone: the canonical form was never computed.
  EXPECT_FALSE(again.canonicalized);

  const LedgerRow total = Total();
  EXPECT_EQ(total.requests, 2);
  EXPECT_EQ(total.misses, 1);
  EXPECT_EQ(total.stored, 1);
  EXPECT_EQ(total.exact_hits, 1);
}

TEST_F(LookupRecordTest, NoTiersValidatesAndReadsNothing) {
  Open();
  const Request q = MakeRequest("refresh me");
  LookupResult first;
  ASSERT_TRUE(cache_->Lookup(q, {}, &first).ok());
  AnswerMiss(q, first, "old");

  LookupOptions none;
  none.tiers = Tiers::kNone;
  LookupResult refresh;
  ASSERT_TRUE(cache_->Lookup(q, none, &refresh).ok());
  EXPECT_FALSE(refresh.hit.has_value());  // stored, but not read
  EXPECT_TRUE(refresh.canonicalized);
  Outcome replace;
  replace.replace = true;
  Response fresh = MakeAnswer("new");
  cache_->Record(q, refresh, replace, &fresh);
  EXPECT_EQ(fresh.cache_status, CacheStatus::kRefresh);
  EXPECT_EQ(CacheTiers(*cache_).GetExact(refresh.exact_key)->text, "new");

  Request bad = q;
  bad.messages.clear();
  LookupResult invalid;
  absl::Status s = cache_->Lookup(bad, {}, &invalid);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(Total().requests, 2);  // the invalid request counts nothing
}

TEST_F(LookupRecordTest, ALookupIsContinuedWithItsOwnKeys) {
  Open();
  const Request q = MakeRequest("in flight elsewhere");
  LookupOptions exact;
  exact.tiers = Tiers::kExact;
  LookupResult lookup;
  ASSERT_TRUE(cache_->Lookup(q, exact, &lookup).ok());
  ASSERT_FALSE(lookup.hit.has_value());
  // Another caller stores the answer meanwhile (a flight that finished).
  LookupResult other;
  ASSERT_TRUE(cache_->Lookup(q, exact, &other).ok());
  AnswerMiss(q, other, "stored by the other call");
  // Continuing the first lookup reads the exact tier again.
  ASSERT_TRUE(cache_->Lookup(q, {}, &lookup).ok());
  ASSERT_TRUE(lookup.hit.has_value());
  EXPECT_EQ(lookup.hit->text, "stored by the other call");
}

TEST_F(LookupRecordTest, FailuresBypassAndWaitsAreCountedNotStored) {
  Open();
  const Request q = MakeRequest("count me");
  LookupResult lookup;
  ASSERT_TRUE(cache_->Lookup(q, {}, &lookup).ok());

  Outcome failed;
  failed.kind = Outcome::Kind::kUpstreamFailed;
  cache_->Record(q, lookup, failed, nullptr);
  Outcome waited_failed;
  waited_failed.kind = Outcome::Kind::kCoalescedFailed;
  cache_->Record(q, lookup, waited_failed, nullptr);
  Outcome bypassed;
  bypassed.kind = Outcome::Kind::kBypassed;
  Response bypass_answer = MakeAnswer("not kept");
  cache_->Record(q, lookup, bypassed, &bypass_answer);
  EXPECT_EQ(bypass_answer.cache_status, CacheStatus::kBypass);
  EXPECT_FALSE(bypass_answer.stored);
  Outcome no_store;
  no_store.store = false;
  Response unstored = MakeAnswer("not kept either");
  cache_->Record(q, lookup, no_store, &unstored);
  EXPECT_FALSE(unstored.stored);
  Response incomplete = MakeAnswer("cut off", "length");
  cache_->Record(q, lookup, Outcome(), &incomplete);
  EXPECT_FALSE(incomplete.stored);
  EXPECT_TRUE(absl::IsNotFound(
      CacheTiers(*cache_).GetExact(lookup.exact_key).status()));

  // A waiter on a leader that was answered: a hit of the leader's entry.
  Response leader = AnswerMiss(q, lookup, "the leader's answer");
  Outcome waited;
  waited.kind = Outcome::Kind::kCoalesced;
  Response shared = leader;
  cache_->Record(q, lookup, waited, &shared);
  EXPECT_EQ(shared.cache_status, CacheStatus::kCoalesced);
  EXPECT_GT(shared.dollars_saved, 0);

  const LedgerRow total = Total();
  EXPECT_EQ(total.requests, 7);
  EXPECT_EQ(total.upstream_errors, 1);  // the waiter's is the leader's
  EXPECT_EQ(total.misses, 5);  // failed, bypass, no_store, incomplete, leader
  EXPECT_EQ(total.stored, 1);
  EXPECT_EQ(total.coalesced, 1);
  // A wait is the ledger's saving, not a hit the entry served.
  ASSERT_TRUE(cache_->FlushStats().ok());
  EXPECT_EQ(cache_->Inspect(lookup.exact_key)->hit_count, 0);
}

TEST_F(LookupRecordTest, RecordSetsTheServedFieldsAfresh) {
  Open();
  const Request q = MakeRequest("what an upstream claims");
  LookupResult lookup;
  ASSERT_TRUE(cache_->Lookup(q, {}, &lookup).ok());
  // An upstream (a ModelClient) that fills fields that are the cache's.
  Response claims = MakeAnswer("the answer");
  claims.cache_status = CacheStatus::kExactHit;
  claims.entry_key = Key128{1, 2};
  claims.similarity = 0.5;
  claims.dollars_saved = 9;
  Outcome no_store;
  no_store.store = false;
  cache_->Record(q, lookup, no_store, &claims);
  EXPECT_EQ(claims.text, "the answer");
  EXPECT_EQ(claims.cache_status, CacheStatus::kMiss);
  EXPECT_FALSE(claims.entry_key.has_value());
  EXPECT_EQ(claims.request_key, lookup.exact_key);
  EXPECT_EQ(claims.similarity, 0);
  EXPECT_EQ(claims.dollars_saved, 0);
  EXPECT_GT(claims.dollars_spent, 0);

  // A null answer where one was due counts as a failure, not a crash.
  cache_->Record(q, lookup, Outcome(), nullptr);
  Outcome waited;
  waited.kind = Outcome::Kind::kCoalesced;
  cache_->Record(q, lookup, waited, nullptr);
  const LedgerRow total = Total();
  EXPECT_EQ(total.requests, 3);
  EXPECT_EQ(total.upstream_errors, 1);  // the waiter's is the leader's
  EXPECT_EQ(total.coalesced, 0);
}

TEST_F(LookupRecordTest, SemanticHitsAndTheSemanticSwitch) {
  Open(/*semantic=*/true);
  const Request q = MakeRequest("How do I reset my router password?");
  LookupResult lookup;
  ASSERT_TRUE(cache_->Lookup(q, {}, &lookup).ok());
  EXPECT_TRUE(lookup.semantic_looked);
  EXPECT_FALSE(lookup.query_vector.empty());  // reused by Record
  AnswerMiss(q, lookup, "hold the reset button");

  const Request near = MakeRequest("how can I reset my router password");
  LookupResult found;
  ASSERT_TRUE(cache_->Lookup(near, {}, &found).ok());
  ASSERT_TRUE(found.hit.has_value()) << found.semantic_decision;
  EXPECT_EQ(found.hit->cache_status, CacheStatus::kSemanticHit);
  EXPECT_EQ(found.hit->entry_key, lookup.exact_key);
  EXPECT_EQ(found.hit->request_key, found.exact_key);
  // Logged for feedback under the keys the hit carries.
  EXPECT_TRUE(cache_->ReportFalseHit(found.exact_key, lookup.exact_key).ok());

  // Off for a request: no semantic lookup, and Record stores no vector.
  LookupOptions off;
  off.semantic = false;
  const Request other = MakeRequest("how could I reset my router password");
  LookupResult plain;
  ASSERT_TRUE(cache_->Lookup(other, off, &plain).ok());
  EXPECT_FALSE(plain.hit.has_value());
  EXPECT_FALSE(plain.semantic_looked);
  AnswerMiss(other, plain, "exact only");
  cache_->WaitForSemanticIndex();
  EXPECT_EQ(cache_->GetSemanticStats().vectors, 1);
  EXPECT_EQ(Total().semantic_hits, 1);
}

}  // namespace
}  // namespace promptcache
