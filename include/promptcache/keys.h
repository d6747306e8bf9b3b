// Canonical form of a request and the keys derived from it.
//
// The canonical form is compact JSON with sorted object keys:
//   {"backend":..,"messages":[{"content":..,"name":..,"role":..,
//    "tool_call_id":..,"tool_calls":..},..],"model":..,"ns":..,
//    "params":{..},"v":1}
// Message fields that are empty are left out. "params" always holds
// temperature, top_p (defaults filled in), and max_tokens, seed, stop,
// tools, tool_choice, response_format and extra keys only when given. JSON
// texts given in parameters are re-serialized canonically: sorted keys, no
// insignificant whitespace, integral numbers written as integers.
#ifndef PROMPTCACHE_KEYS_H_
#define PROMPTCACHE_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "promptcache/export.h"
#include "promptcache/request.h"

namespace promptcache {

// A 128-bit XXH3 hash.
struct PROMPTCACHE_EXPORT Key128 {
  uint64_t hi = 0;
  uint64_t lo = 0;

  friend bool operator==(const Key128& a, const Key128& b) {
    return a.hi == b.hi && a.lo == b.lo;
  }
  friend bool operator!=(const Key128& a, const Key128& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const Key128& k) {
    return H::combine(std::move(h), k.hi, k.lo);
  }

  // 32 lowercase hex digits.
  std::string ToHex() const;
  // 16 big-endian bytes: the RocksDB key.
  std::string ToBytes() const;
  static absl::StatusOr<Key128> FromHex(absl::string_view hex);
  static absl::StatusOr<Key128> FromBytes(absl::string_view bytes);
};

PROMPTCACHE_EXPORT Key128 HashBytes(absl::string_view bytes);

// The three keys of a request.
struct RequestKeys {
  // Everything that determines the answer.
  Key128 exact;
  // namespace + backend + model + params: the semantic tier searches only
  // within one scope.
  Key128 scope;
  // The conversation before the last user turn (system prompt and earlier
  // turns), within the scope.
  Key128 context;
};

struct CanonicalOptions {
  // Largest accepted canonical request, in bytes.
  size_t max_request_bytes = 4 << 20;
};

// Checks a request: non-empty backend, model and messages, non-empty roles,
// valid UTF-8 everywhere, valid JSON in the *_json fields, finite numbers,
// size within limits. Returns InvalidArgument naming the offending field.
PROMPTCACHE_EXPORT absl::Status ValidateRequest(
    const Request& request, const CanonicalOptions& options = {});

// The canonical bytes of a valid request (validates first).
PROMPTCACHE_EXPORT absl::StatusOr<std::string> CanonicalRequest(
    const Request& request, const CanonicalOptions& options = {});

// Keys of a request (validates first).
PROMPTCACHE_EXPORT absl::StatusOr<RequestKeys> ComputeKeys(
    const Request& request, const CanonicalOptions& options = {});

// Both at once, sharing the work.
struct CanonicalizedRequest {
  std::string canonical;
  RequestKeys keys;
};
PROMPTCACHE_EXPORT absl::StatusOr<CanonicalizedRequest> Canonicalize(
    const Request& request, const CanonicalOptions& options = {});

// Parses a canonical request back into a Request (used by import and
// inspect). Parameters come back in canonical form.
PROMPTCACHE_EXPORT absl::StatusOr<Request> RequestFromCanonical(
    absl::string_view canonical);

// The last message with role "user", or nullptr.
PROMPTCACHE_EXPORT const Message* LastUserMessage(const Request& request);

}  // namespace promptcache

#endif  // PROMPTCACHE_KEYS_H_
