// CachedClient: the caching middleware around any ModelClient.
#ifndef PROMPTCACHE_CACHED_CLIENT_H_
#define PROMPTCACHE_CACHED_CLIENT_H_

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "promptcache/cache.h"
#include "promptcache/export.h"
#include "promptcache/model_client.h"

namespace promptcache {

// Per-call controls.
struct CallOptions {
  // Neither read nor write the cache: call upstream (still counted).
  bool bypass = false;
  // Do not read the cache; call upstream and store the fresh answer.
  bool force_refresh = false;
  // Read the cache, but do not store a miss's answer.
  bool no_store = false;
  // TTL for an answer stored by this call.
  std::optional<absl::Duration> ttl;
  // Semantic tier for this call: nullopt follows SemanticOptions::enabled.
  std::optional<bool> semantic;
  // Similarity threshold for this call.
  std::optional<double> threshold;
};

class PROMPTCACHE_EXPORT CachedClient {
 public:
  // `cache` must outlive the client. `upstream` is called on misses, from
  // the calling threads.
  CachedClient(Cache& cache, ModelClient upstream);
  ~CachedClient();
  CachedClient(const CachedClient&) = delete;
  CachedClient& operator=(const CachedClient&) = delete;

  // Answers `request` from the cache when it can, else from upstream:
  //  - invalid request: InvalidArgument, nothing called, nothing written;
  //  - exact hit: the stored answer, cache_status kExactHit;
  //  - miss: one upstream call per exact key at a time; concurrent identical
  //    requests wait for it and share its result (kCoalesced), errors too,
  //    except Unauthenticated, PermissionDenied and Cancelled, which belong
  //    to the leading call (its key, its caller): a waiter then calls
  //    upstream itself;
  //  - upstream error: returned, counted, never cached;
  //  - incomplete answer (finish reason "length", ...): returned, not cached.
  absl::StatusOr<Response> Complete(const Request& request,
                                    const CallOptions& call = {});

  // As above, with `upstream` instead of the client's own upstream for this
  // call (e.g. a proxy forwarding each client's own request). Coalesced
  // waiters share the result of whichever call leads. InvalidArgument when
  // `upstream` is empty.
  absl::StatusOr<Response> Complete(const Request& request,
                                    const CallOptions& call,
                                    const ModelClient& upstream);

  // Number of upstream calls made so far.
  int64_t upstream_calls() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace promptcache

#endif  // PROMPTCACHE_CACHED_CLIENT_H_
