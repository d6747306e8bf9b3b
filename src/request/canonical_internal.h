// The exact key alone, for the exact-hit path.
#ifndef PROMPTCACHE_SRC_REQUEST_CANONICAL_INTERNAL_H_
#define PROMPTCACHE_SRC_REQUEST_CANONICAL_INTERNAL_H_

#include "promptcache/keys.h"
#include "promptcache/request.h"

namespace promptcache::internal {

// Sets `*key` to Canonicalize(request, options)->keys.exact without the
// scope and context keys and without allocating (the canonical bytes go to
// a per-thread buffer). False for any request Canonicalize rejects: call it
// for the error.
bool ExactKeyOf(const Request& request, const CanonicalOptions& options,
                Key128* key);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_REQUEST_CANONICAL_INTERNAL_H_
