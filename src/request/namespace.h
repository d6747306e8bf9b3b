// The namespace a request belongs to.
#ifndef PROMPTCACHE_SRC_REQUEST_NAMESPACE_H_
#define PROMPTCACHE_SRC_REQUEST_NAMESPACE_H_

#include <string>

#include "promptcache/request.h"

namespace promptcache::internal {

// `request.ns`, or "default" when it is empty (see Request::ns).
const std::string& NamespaceOf(const Request& request);

}  // namespace promptcache::internal

#endif  // PROMPTCACHE_SRC_REQUEST_NAMESPACE_H_
