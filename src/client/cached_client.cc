#include "promptcache/cached_client.h"

#include <atomic>
#include <exception>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "request/canonical_internal.h"

namespace promptcache {
namespace {

// One upstream call that identical concurrent requests wait for.
struct Flight {
  absl::Notification done;
  absl::StatusOr<Response> result = absl::UnknownError("not finished");
};

// Failures that belong to the leading call, not to the request: a rejected
// key (callers may bring their own keys) or a cancelled call (its client
// hung up).
bool IsCallersOwnFailure(const absl::Status& status) {
  return absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status) ||
         absl::IsCancelled(status);
}

}  // namespace

class CachedClient::Impl {
 public:
  Impl(Cache& cache, ModelClient upstream)
      : cache_(cache), upstream_(std::move(upstream)) {}

  absl::StatusOr<Response> Complete(const Request& request,
                                    const CallOptions& call,
                                    const ModelClient& upstream);
  const ModelClient& default_upstream() const { return upstream_; }
  int64_t upstream_calls() const { return upstream_calls_.load(); }
  const Options& options() const { return cache_.options(); }

 private:
  absl::StatusOr<Response> CallUpstream(const Request& request,
                                        const ModelClient& upstream);
  // Whether `answers_stored` answers satisfy this request (buckets).
  bool BucketFull(const Request& request, int answers_stored) const {
    const int n = cache_.options().max_answers_per_key;
    return n <= 1 || request.params.temperature.value_or(1.0) <= 0 ||
           answers_stored >= n;
  }
  // `looked_up`: Complete already found no usable answer under the key.
  absl::StatusOr<Response> Serve(const Request& request,
                                 const CanonicalizedRequest& canonical,
                                 const CallOptions& call,
                                 const ModelClient& upstream, bool looked_up);
  absl::StatusOr<Response> Lead(const Request& request,
                                const CanonicalizedRequest& canonical,
                                const CallOptions& call,
                                const ModelClient& upstream);

  Cache& cache_;
  ModelClient upstream_;
  std::atomic<int64_t> upstream_calls_{0};
  absl::Mutex mu_;
  absl::flat_hash_map<Key128, std::shared_ptr<Flight>> in_flight_
      ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<Response> CachedClient::Impl::CallUpstream(
    const Request& request, const ModelClient& upstream) {
  upstream_calls_.fetch_add(1);
  const absl::Time start = absl::Now();
  absl::StatusOr<Response> response;
  try {
    response = upstream(request);
  } catch (const std::exception& e) {
    // Waiting requests must be released whatever the upstream does.
    response = absl::InternalError(
        absl::StrCat("upstream ModelClient threw: ", e.what()));
  } catch (...) {
    response = absl::InternalError("upstream ModelClient threw");
  }
  if (response.ok() && response->upstream_latency == absl::ZeroDuration()) {
    response->upstream_latency = absl::Now() - start;
  }
  return response;
}

absl::StatusOr<Response> CachedClient::Impl::Lead(
    const Request& request, const CanonicalizedRequest& canonical,
    const CallOptions& call, const ModelClient& upstream) {
  // A flight that finished between our miss and our registration has
  // already stored its answer: look again before paying.
  if (!call.force_refresh) {
    int answers = 0;
    absl::StatusOr<Response> hit =
        cache_.GetExact(canonical.keys.exact, &answers);
    if (hit.ok() && BucketFull(request, answers)) {
      cache_.RecordHit(request, canonical.keys.exact, CacheStatus::kExactHit,
                       &*hit);
      return hit;
    }
  }
  // The semantic tier: a near-duplicate in the same scope and context.
  std::vector<float> query_vector;
  const Options& options = cache_.options();
  const bool semantic = options.embedder != nullptr &&
                        call.semantic.value_or(options.semantic.enabled);
  std::string semantic_decision;
  if (semantic && !call.force_refresh) {
    absl::StatusOr<Response> near = cache_.FindSemantic(
        request, canonical.keys, call.threshold, &query_vector);
    if (near.ok()) {
      const Key128 entry = *Key128::FromHex(near->entry_key);
      near->request_key = canonical.keys.exact.ToHex();
      cache_.RecordHit(request, entry, CacheStatus::kSemanticHit, &*near);
      return near;
    }
    // Any other failure (the embedder's, the store's) was counted by the
    // cache; the call goes on as a miss (see "Failures" in cache.h).
    semantic_decision = std::string(near.status().message());
  }
  absl::StatusOr<Response> response = CallUpstream(request, upstream);
  if (response.ok()) response->semantic_decision = std::move(semantic_decision);
  if (!response.ok()) {
    cache_.RecordUnstoredMiss(request, nullptr).IgnoreError();
    return response;
  }
  response->cache_status =
      call.force_refresh ? CacheStatus::kRefresh : CacheStatus::kMiss;
  if (!call.no_store && IsCompleteFinishReason(response->finish_reason)) {
    // After a semantic lookup its vector (or its failure: empty) is reused.
    // A call with the semantic tier off (per call or by
    // SemanticOptions::enabled) does no semantic work at all: its entry
    // gets no vector (an empty one says so).
    const bool looked_up_semantic = semantic && !call.force_refresh;
    const bool semantic_off_for_call = options.embedder != nullptr && !semantic;
    absl::Status stored = cache_.StoreMiss(
        request, canonical, call.ttl, &*response, call.force_refresh,
        looked_up_semantic || semantic_off_for_call ? &query_vector : nullptr);
    if (!stored.ok()) {
      // The answer is good even when storing failed; count it as unstored.
      cache_.RecordUnstoredMiss(request, &*response).IgnoreError();
    }
  } else {
    cache_.RecordUnstoredMiss(request, &*response).IgnoreError();
  }
  return response;
}

absl::StatusOr<Response> CachedClient::Impl::Complete(
    const Request& request, const CallOptions& call,
    const ModelClient& upstream) {
  // Checked before anything is paid for: a TTL that cannot store the
  // answer was once noticed only after the upstream call.
  if (call.ttl.has_value() && *call.ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CallOptions::ttl must be positive; got ",
                     absl::FormatDuration(*call.ttl)));
  }
  // An exact hit needs only the exact key: the canonical string, the scope
  // and context keys wait for a miss.
  bool looked_up = false;
  Key128 key;
  if (!call.bypass && !call.force_refresh &&
      internal::ExactKeyOf(request, cache_.options().canonical, &key)) {
    int answers = 0;
    absl::StatusOr<Response> hit = cache_.GetExact(key, &answers);
    if (hit.ok() && BucketFull(request, answers)) {
      cache_.RecordHit(request, key, CacheStatus::kExactHit, &*hit);
      hit->request_key = hit->entry_key;
      hit->similarity = 1;
      return hit;
    }
    // A store that cannot be read makes a miss (counted by the cache).
    looked_up = true;
  }
  absl::StatusOr<CanonicalizedRequest> canonical =
      Canonicalize(request, cache_.options().canonical);
  if (!canonical.ok()) return canonical.status();
  absl::StatusOr<Response> response =
      Serve(request, *canonical, call, upstream, looked_up);
  if (response.ok()) {
    response->request_key = canonical->keys.exact.ToHex();
    if (response->cache_status == CacheStatus::kExactHit) {
      response->similarity = 1;
    }
  }
  return response;
}

absl::StatusOr<Response> CachedClient::Impl::Serve(
    const Request& request, const CanonicalizedRequest& canonical_ref,
    const CallOptions& call, const ModelClient& upstream, bool looked_up) {
  const CanonicalizedRequest* canonical = &canonical_ref;

  if (call.bypass) {
    absl::StatusOr<Response> response = CallUpstream(request, upstream);
    if (!response.ok()) {
      cache_.RecordUnstoredMiss(request, nullptr).IgnoreError();
      return response;
    }
    response->cache_status = CacheStatus::kBypass;
    cache_.RecordUnstoredMiss(request, &*response).IgnoreError();
    return response;
  }

  const Key128& key = canonical->keys.exact;
  if (!call.force_refresh && !looked_up) {
    int answers = 0;
    absl::StatusOr<Response> hit = cache_.GetExact(key, &answers);
    if (hit.ok() && BucketFull(request, answers)) {
      cache_.RecordHit(request, key, CacheStatus::kExactHit, &*hit);
      return hit;
    }
    // A store that cannot be read makes a miss (counted by the cache).
  }

  // Calls that must not take another call's result run on their own: a
  // forced refresh, and calls with their own semantic settings.
  if (call.force_refresh || call.semantic.has_value() ||
      call.threshold.has_value()) {
    return Lead(request, *canonical, call, upstream);
  }
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = in_flight_.try_emplace(key);
    if (inserted) {
      it->second = std::make_shared<Flight>();
      leader = true;
    }
    flight = it->second;
  }
  if (!leader) {
    flight->done.WaitForNotification();
    absl::StatusOr<Response> shared = flight->result;
    if (!shared.ok() && IsCallersOwnFailure(shared.status())) {
      // The leader's credentials were refused, or its caller went away:
      // that says nothing about this call, which goes upstream itself.
      return Lead(request, *canonical, call, upstream);
    }
    if (!shared.ok()) {
      cache_.RecordUnstoredMiss(request, nullptr, /*coalesced=*/true)
          .IgnoreError();
      return shared;
    }
    cache_.RecordHit(request, key, CacheStatus::kCoalesced, &*shared);
    return shared;
  }
  absl::Cleanup release = [&] {
    // Waiters must never hang, even if an embedder or verifier threw.
    if (!flight->done.HasBeenNotified()) {
      flight->result = absl::InternalError("the leading call did not finish");
      flight->done.Notify();
    }
    absl::MutexLock lock(&mu_);
    in_flight_.erase(key);
  };
  absl::StatusOr<Response> response = Lead(request, *canonical, call, upstream);
  flight->result = response;
  flight->done.Notify();
  return response;
}

CachedClient::CachedClient(Cache& cache, ModelClient upstream)
    : impl_(std::make_unique<Impl>(cache, std::move(upstream))) {}
CachedClient::~CachedClient() = default;

absl::StatusOr<Response> CachedClient::Complete(const Request& request,
                                                const CallOptions& call) {
  return impl_->Complete(request, call, impl_->default_upstream());
}

absl::StatusOr<Response> CachedClient::Complete(const Request& request,
                                                const CallOptions& call,
                                                const ModelClient& upstream) {
  if (!upstream) {
    return absl::InvalidArgumentError("CachedClient: the upstream is empty");
  }
  return impl_->Complete(request, call, upstream);
}

int64_t CachedClient::upstream_calls() const { return impl_->upstream_calls(); }

}  // namespace promptcache
