#include "promptcache/cached_client.h"

#include <atomic>
#include <exception>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

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

class PROMPTCACHE_HIDDEN CachedClient::Impl {
 public:
  Impl(Cache& cache, ModelClient upstream)
      : cache_(cache), upstream_(std::move(upstream)) {}

  absl::StatusOr<Response> Complete(const Request& request,
                                    const CallOptions& call,
                                    const ModelClient& upstream);
  const ModelClient& default_upstream() const { return upstream_; }
  int64_t upstream_calls() const { return upstream_calls_.load(); }

 private:
  absl::StatusOr<Response> CallUpstream(const Request& request,
                                        const ModelClient& upstream);
  // Calls upstream for a request that no identical call in flight answers
  // (looking in both tiers first, unless refreshing) and records how it
  // ended. `lookup` is the exact-tier lookup already made.
  absl::StatusOr<Response> Lead(const Request& request, const CallOptions& call,
                                const ModelClient& upstream,
                                LookupResult* lookup);
  // Waits for, or leads, the one upstream call per exact key.
  absl::StatusOr<Response> Coalesce(const Request& request,
                                    const CallOptions& call,
                                    const ModelClient& upstream,
                                    LookupResult* lookup);

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

absl::StatusOr<Response> CachedClient::Impl::Lead(const Request& request,
                                                  const CallOptions& call,
                                                  const ModelClient& upstream,
                                                  LookupResult* lookup) {
  if (!call.force_refresh) {
    // A flight that finished between our miss and our registration has
    // already stored its answer: look again (and in the semantic tier)
    // before paying.
    LookupOptions both;
    both.semantic = call.semantic;
    both.threshold = call.threshold;
    if (absl::Status s = cache_.Lookup(request, both, lookup); !s.ok()) {
      return s;
    }
    if (lookup->hit.has_value()) return *std::move(lookup->hit);
  }
  absl::StatusOr<Response> response = CallUpstream(request, upstream);
  Outcome outcome;
  if (!response.ok()) {
    outcome.kind = Outcome::Kind::kUpstreamFailed;
    cache_.Record(request, *lookup, outcome, nullptr);
    return response;
  }
  outcome.store = !call.no_store;
  outcome.replace = call.force_refresh;
  outcome.ttl = call.ttl;
  cache_.Record(request, *lookup, outcome, &*response);
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
  LookupOptions exact;
  exact.tiers = call.bypass || call.force_refresh
                    ? LookupOptions::Tiers::kNone
                    : LookupOptions::Tiers::kExact;
  exact.semantic = call.semantic;
  LookupResult lookup;
  if (absl::Status s = cache_.Lookup(request, exact, &lookup); !s.ok()) {
    return s;
  }
  if (lookup.hit.has_value()) return *std::move(lookup.hit);

  absl::StatusOr<Response> response;
  if (call.bypass) {
    response = CallUpstream(request, upstream);
    Outcome outcome;
    outcome.kind = response.ok() ? Outcome::Kind::kBypassed
                                 : Outcome::Kind::kUpstreamFailed;
    cache_.Record(request, lookup, outcome,
                  response.ok() ? &*response : nullptr);
  } else if (call.force_refresh || call.semantic.has_value() ||
             call.threshold.has_value()) {
    // Calls that must not take another call's result run on their own: a
    // forced refresh, and calls with their own semantic settings.
    response = Lead(request, call, upstream, &lookup);
  } else {
    response = Coalesce(request, call, upstream, &lookup);
  }
  if (response.ok()) response->request_key = lookup.exact_key;
  return response;
}

absl::StatusOr<Response> CachedClient::Impl::Coalesce(
    const Request& request, const CallOptions& call,
    const ModelClient& upstream, LookupResult* lookup) {
  const Key128 key = lookup->exact_key;
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
      return Lead(request, call, upstream, lookup);
    }
    Outcome outcome;
    outcome.kind = shared.ok() ? Outcome::Kind::kCoalesced
                               : Outcome::Kind::kCoalescedFailed;
    cache_.Record(request, *lookup, outcome, shared.ok() ? &*shared : nullptr);
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
  absl::StatusOr<Response> response = Lead(request, call, upstream, lookup);
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
